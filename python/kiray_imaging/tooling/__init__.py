"""Build tooling, apart from the functions' runtime: the Lambda layer's binary gate (``layer_gate``).

layer/build.py leaves this folder out of the layer zip (TOOLING_LEFT_OUT); the wheel keeps it, for
`kiray-imaging verify-layer`. Its modules import the standard library, pyelftools and each other (relatively), never
the rest of kiray_imaging: build.py loads the folder by path (``__main__.load_gate``) on hosts where the package's
native extension cannot be imported, a Mac building the Linux wheel being the usual case.
"""
