"""Liveness and readiness for load balancers and orchestrators: no authentication, no data."""

import logging

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from models import db

health = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health.get("/healthz")
def healthz():
    """The process answers: restart it if this fails. Touches nothing else."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """The database answers: send traffic here only while this is 200."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.warning("not ready: %s", getattr(exc, "orig", exc))
        response = jsonify(status="unavailable", detail="the database does not answer")
        response.status_code = 503
        return response
    return jsonify(status="ready")
