from services.notify.app import create_app
from services.notify.settings import NotifySettings
from shared.service import serve

settings = NotifySettings()
serve(create_app(settings), settings.http_host, settings.http_port)
