from services.reporting.app import ReportingSettings, create_app
from shared.service import serve

settings = ReportingSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
