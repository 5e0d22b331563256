from services.notify.app import NotifySettings, create_app
from shared.service import serve

settings = NotifySettings()
serve(create_app(settings), settings.http_host, settings.http_port)
