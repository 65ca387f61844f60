"""The Lambda runtime every Coexist function and the shared layer target: the one place "3.13" is written.

Plain data (no aws_cdk import) so the layer build script can read it without synthesising anything;
the stacks map it to `aws_lambda.Runtime` / `Architecture`. Wheels in the layer are compiled for this
interpreter and CPU, so changing one without the other would ship `.so` files Lambda cannot load.
"""

PYTHON_VERSION = "3.13"
ARCHITECTURE = "arm64"  # Graviton: cheaper per GB-second, and every wheel we need is published for it

# pip's view of the same target: CPython ABI tag, platform tag and the suffix of compiled modules.
PYTHON_TAG = "cp" + PYTHON_VERSION.replace(".", "")  # cp313
PIP_PLATFORM = "manylinux2014_aarch64"  # glibc 2.17+, which Amazon Linux 2023 satisfies
CACHE_TAG = f"cpython-{PYTHON_TAG[2:]}"  # bytecode file names: __pycache__/<module>.cpython-313.pyc
EXTENSION_SUFFIX = f"{CACHE_TAG}-aarch64-linux-gnu.so"
RUNTIME_NAME = f"python{PYTHON_VERSION}"  # the CloudFormation `Runtime` value
# The first four bytes of every bytecode file the runtime's Python writes and accepts
# (`importlib.util.MAGIC_NUMBER`): 3571 for CPython 3.13, the same for every 3.13 release.
BYTECODE_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"
