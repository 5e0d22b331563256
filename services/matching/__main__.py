from services.matching.app import MatchingSettings, create_app
from shared.service import serve

settings = MatchingSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
