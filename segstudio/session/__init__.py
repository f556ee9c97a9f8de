"""The application layer, Qt-free: what the window and the command line both do.

- :mod:`~segstudio.session.document`: the open image, its edit operations and
  events, and the background saver.
- :mod:`~segstudio.session.loading`: opening documents in workers, so closing
  waits for no file's decode.
- :mod:`~segstudio.session.models`: the active model; predicting one image or all.
- :mod:`~segstudio.session.training`: fine-tune requests, running and resuming
  them, and the one summary of a finished run.

Nothing here imports Qt. Torch is imported only inside the functions that
workers run, never when a module here is imported, so the window can import
this package on its own thread.
"""
