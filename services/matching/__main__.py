from services.matching.app import create_app
from services.matching.settings import MatchingSettings
from shared.service import serve

settings = MatchingSettings()
serve(create_app(settings), settings.http_host, settings.http_port)
