"""Our demo's tasks: ``demo`` (why each pool wins or loses), ``lessons`` (one concurrency fact each, made
observable), ``ledger`` (side effects the soak judges by). They are plain ``@app.task`` functions, as a
user's would be: ``celery_futures.install(app)`` is what makes them claimed, cancellable and watched."""
