"""Flask extensions, created unbound and initialised by the app factory."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_wtf import CSRFProtect


def client_address() -> str:
    return request.remote_addr or "unknown"


limiter = Limiter(key_func=client_address, headers_enabled=True)
login_manager = LoginManager()
csrf = CSRFProtect()
