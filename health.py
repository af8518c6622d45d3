"""Liveness and readiness for load balancers and orchestrators: no authentication, no data."""

import logging

from flask import Blueprint, current_app, jsonify

from dbcheck import readiness
from models import db

health = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@health.get("/healthz")
def healthz():
    """The process answers: restart it if this fails. Touches nothing else."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    """The database answers, exists and is at the head of the migrations: send traffic here only while 200."""
    problem = readiness(db.session, current_app.config["SQLALCHEMY_DATABASE_URI"])
    db.session.rollback()
    if problem:
        log.warning("not ready: %s", problem.message)
        response = jsonify(status="unavailable", detail=problem.detail)
        response.status_code = 503
        return response
    return jsonify(status="ready")
