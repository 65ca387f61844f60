"""`python -m local` (what `make run` runs) and `python -m local replay FILE...`; see `local/__init__.py`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# `make run` sets PYTHONPATH=layers:. ; a bare `python -m local` from the repo root works too.
_REPO = Path(__file__).resolve().parent.parent
for _path in (_REPO / "layers", _REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from coexist import settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description="Coexist on this machine, no AWS account needed.")
    parser.add_argument("--host", default="127.0.0.1", help="interface for both servers (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("COEXIST_PORT", 8080)), help="HTTP port; 0 picks a free one (env COEXIST_PORT, default 8080)")
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("COEXIST_MOTO_PORT", 5001)), help="AWS emulator port; 0 picks a free one (env COEXIST_MOTO_PORT, default 5001)")
    parser.add_argument("--prefix", default="coexist-local", help="resource name prefix")
    parser.add_argument("--sandbox-port", type=int, default=int(os.environ.get("COEXIST_META_SANDBOX_PORT", 0)), help="Meta sandbox port (env COEXIST_META_SANDBOX_PORT, default 0: a free one); unused when GRAPH_API_BASE_URL is set")
    commands = parser.add_subparsers(dest="command")
    replay = commands.add_parser("replay", help="sign payload files like Meta does and POST them to the webhook")
    replay.add_argument("files", nargs="+")
    replay.add_argument("--url", help="webhook URL (default http://127.0.0.1:$COEXIST_PORT/webhook)")
    replay.add_argument("--secret", default=os.environ.get("WHATSAPP_APP_SECRET", settings.LOCAL_APP_SECRET))
    args = parser.parse_args(argv)

    if args.command == "replay":
        from local import meta

        return meta.replay(args.files, args.url or meta.default_webhook_url(), args.secret)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="[local] %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from local.runtime import Options, run

    return run(Options(host=args.host, port=args.port, moto_port=args.moto_port, prefix=args.prefix, sandbox_port=args.sandbox_port))


if __name__ == "__main__":
    sys.exit(main())
