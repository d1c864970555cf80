"""Form handling shared by the console's pages: a service's refusal becomes messages
beside the fields, never a 500 and never a lost form."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from overture.platform.db import db
from overture.platform.errors import Conflict, Forbidden, ValidationFailed


class FormErrors(dict[str, str]):
    """Field name -> message; `_form` for what belongs to no one field."""

    @property
    def general(self) -> str | None:
        return self.get("_form")


@contextmanager
def form_errors(fields: set[str] | None = None) -> Iterator[FormErrors]:
    """Collect what a service refuses (bad input, a conflict) as form messages. The
    transaction is rolled back; permission errors still leave as a 403 page."""
    errors = FormErrors()
    try:
        yield errors
    except ValidationFailed as err:
        db.session.rollback()
        for e in err.errors:
            name = e["field"] if fields is None or e["field"] in fields else "_form"
            errors[name] = _sentence(e["message"] if name != "_form" else
                                     f"{e['field']}: {e['message']}")
    except Conflict as err:
        db.session.rollback()
        errors["_form"] = _sentence(err.detail)
    except Forbidden:
        raise


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


def status_of(errors: FormErrors) -> int:
    return 422 if errors else 200

