"""Extension singletons, created here uninitialised and bound to the app in ``create_app``.
The OpenAPI-aware ``Api`` lives with the API layer (app/api/contract.py)."""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


# Objects stay readable after commit: responses are dumped from them without a reload.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
