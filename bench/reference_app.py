"""The reference for `make bench`: a bare Flask JSON route, served by gunicorn with the
service's own settings (gunicorn.conf.py). Whatever the service costs beyond this is ours."""

from flask import Flask, request

app = Flask(__name__)


@app.post("/reference")
def reference():
    """Parse a JSON body and answer with a small JSON object, as a create would."""
    body = request.get_json()
    return {"received": len(body), "status": "created"}, 201


@app.get("/reference")
def ready():
    return {"status": "ok"}
