"""What each `overture worker` process imports: the app, its broker, the step actor."""

from overture.web.app import create_app

app = create_app()
broker = app.extensions["overture.broker"]
