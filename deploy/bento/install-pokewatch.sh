#!/bin/sh
# `pokewatch` in the API image. bentofile.yaml names this file as docker.setup_script:
# BentoML copies it into the Bento (env/docker/script__<hash>) and runs it as root while the
# image is built, after the Python packages are installed. It writes the command into BIN_DIR
# (default: the image's virtual environment, $VIRTUAL_ENV/bin, first on its PATH):
#
#   docker run --rm IMAGE pokewatch keys create --name me
#
# The command is the Bento's own CLI (src/pipelines/cli.py: the Bento holds the code, not an
# installed distribution with its console script), run in src/ as `bentoml serve` runs the
# service, so relative paths in the configuration mean the same to both. The image has the
# serving packages only: `pokewatch keys` and `--help` need nothing else, and a command that
# needs the train or pipelines extra says so in one line and exits 1.
# tests/deploy/test_bento_cli.py runs this script, from a built Bento, and the command.
set -eu
bin_dir="${1:-${VIRTUAL_ENV:?}/bin}"
cat >"$bin_dir/pokewatch" <<'COMMAND'
#!/bin/sh
# Written by deploy/bento/install-pokewatch.sh: the Bento's `pokewatch`, run in its src/.
cd "${BENTO_PATH:?}/src"
exec python -m pipelines.cli "$@"
COMMAND
chmod 0755 "$bin_dir/pokewatch"
