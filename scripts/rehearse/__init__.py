"""`make rehearse`: the packaged functions run the way Lambda runs them, before anything is deployed.

`sls package` makes the function zips and the template (the Serverless plugin builds and verifies the layer), then
each function gets an execution environment laid out as python3.12's (sandbox.py), the AWS Runtime Interface
Emulator in front of it (rie.py) and awslambdaric inside it, and is invoked with the events production delivers
(cases.py) against a moto S3, all in a network namespace that has a loopback interface and nothing else. It prints
Lambda's REPORT line for every invocation and fails on any error the runtime reports (an ImportModuleError, a
timeout, an out-of-memory kill) and on any rendition missing or wrong in the bucket.

    python -m scripts.rehearse [--layer ZIP] [--package-dir DIR] [--event FILE] [--json-report FILE]

What it cannot show: Lambda's own kernel, Amazon Linux 2023's libraries (the host's /usr is mounted: glibc 2.36
here, 2.34 there; the layer gate holds the binary to 2.17), CPU scaled to the memory size, and AWS's real S3, IAM
and EventBridge (docs/deploying.md checks those after a deploy).
"""
