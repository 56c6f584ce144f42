"""``python -m pbxis.sim [--port 5038] [--scenario busy] [--speed 1]``: run the simulator."""
from __future__ import annotations

import argparse
import sys
import threading

from . import scenario, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pbxis.sim",
                                     description="Run pbxis's simulated Asterisk AMI server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--scenario", default="busy", choices=scenario.names())
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    server = serve(args.port, args.host, scenario_name=args.scenario, speed=args.speed,
                   seed=args.seed)
    sys.stderr.write(f"pbxis simulator on {server.url()} (scenario {args.scenario}); "
                     "Ctrl-C stops\n")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
