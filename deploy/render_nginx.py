#!/usr/bin/env python3
"""Write kaiku_ops' nginx site file from deploy/nginx/kaiku_ops.conf.in (standard library only).

    python3 deploy/render_nginx.py --server-name ops.example.org --static-root /srv/kaiku_ops/.data/staticfiles \\
        > /etc/nginx/sites-available/kaiku_ops

The body limit of /v1/ defaults to TELEMETRY_MAX_BODY_BYTES (environment, else 20 MiB), the application's own.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "kaiku_ops.conf.in"


def render(*, listen: str, server_name: str, upstream: str, static_root: str, max_body_bytes: int) -> str:
    if not Path(static_root).is_absolute():
        raise ValueError(f"--static-root must be an absolute path, not {static_root!r}")
    values = {"@LISTEN@": listen, "@SERVER_NAME@": server_name, "@UPSTREAM@": upstream,
              "@STATIC_ROOT@": static_root.rstrip("/"), "@MAX_BODY@": str(max_body_bytes)}
    for name, value in values.items():
        if not value or any(c in value for c in ";{}'\"\n#$"):
            raise ValueError(f"{name.strip('@').lower()} {value!r} cannot go into an nginx file")
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(name, value)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="80", help="nginx listen value (default 80)")
    parser.add_argument("--server-name", default="_", help="host name(s) of the site (default _: any)")
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="daphne's address (default 127.0.0.1:8000)")
    parser.add_argument("--static-root", required=True, help="STATIC_ROOT after manage.py collectstatic")
    parser.add_argument("--max-body-bytes", type=int,
                        default=int(os.environ.get("TELEMETRY_MAX_BODY_BYTES", 20 * 1024 * 1024)),
                        help="body limit of /v1/ (default TELEMETRY_MAX_BODY_BYTES or 20 MiB)")
    options = parser.parse_args(argv)
    try:
        sys.stdout.write(render(listen=options.listen, server_name=options.server_name, upstream=options.upstream,
                                static_root=options.static_root, max_body_bytes=options.max_body_bytes))
    except ValueError as error:
        parser.error(str(error))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
