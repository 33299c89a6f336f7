"""The one lifecycle of a BackgroundRun (imports, proposal runs, exports, training).

A run is created QUEUED by its feature's service, handed to a task with `enqueue`, marked RUNNING
by `begin`, and finished by `finish`; `failing` turns any exception in the task into FAILED with
its message. Services call these; they never import tasks: the task is passed in.
"""




def enqueue(run, task, **arguments):
    """Queue `task` for `run` and record its task id, without overwriting what the task wrote.

    The immediate backend (tests, `manage.py` in the foreground) runs the task inside enqueue(),
    so only task_id is written and the run is read back afterwards.
    """
    result = task.enqueue(**arguments)
    type(run).objects.filter(pk=run.pk).update(task_id=str(result.id)[:64])
    run.refresh_from_db()
    return run
