"""One router per resource; :func:`api.main.create_app` mounts them all."""
