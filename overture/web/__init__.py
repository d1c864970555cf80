"""Top floor: the Flask app, REST API, console, portal, admin and webhooks."""
