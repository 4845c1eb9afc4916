"""strato's built-in Python runtime (the counterpart of AWS's awslambdaric), run inside each
execution environment of a ``python3.X`` function. Stdlib only; Python 3.10 to 3.13.

``python -m lambda_runtime`` (with this package's parent on ``sys.path``) runs it; the zygote
imports ``lambda_runtime.bootstrap`` up front and calls ``main()`` in each forked environment.
"""
