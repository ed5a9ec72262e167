#!/usr/bin/env bash
# scripts/lib.sh: helpers shared by ringlet's shell scripts; sourced, never run.
#
# Gives: RINGLET_ROOT (the repository root), logging to stderr (stdout stays
# free for a script's real output, e.g. `scripts/pg start` prints a URL), and
# ringlet_need_packages / ringlet_need_commands, which install what is missing
# on a Debian-like machine (as root directly, else through sudo).
#
# Environment it reads:
#   RINGLET_NO_INSTALL=1   never install anything: only warn about what is missing
#                          (for machines where you manage packages yourself)
set -euo pipefail

# Guard against being sourced twice (scripts source each other's helpers).
if [[ -n "${RINGLET_LIB_LOADED:-}" ]]; then
    return 0
fi
RINGLET_LIB_LOADED=1

# shellcheck disable=SC2034  # used by the scripts that source this file
RINGLET_ROOT="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The tag in front of every log line: the name of the script that sourced us.
RINGLET_LOG_TAG="${RINGLET_LOG_TAG:-$(basename "${BASH_SOURCE[1]:-$0}")}"

# --- logging (all on stderr) ------------------------------------------------

ringlet_log() {
    printf '[%s] %s\n' "$RINGLET_LOG_TAG" "$*" >&2
}

ringlet_warn() {
    printf '[%s] warning: %s\n' "$RINGLET_LOG_TAG" "$*" >&2
}

ringlet_die() {
    printf '[%s] error: %s\n' "$RINGLET_LOG_TAG" "$*" >&2
    exit 1
}

# A visible header between the long phases of a script (build, tests...).
ringlet_section() {
    printf '\n[%s] ==== %s ====\n' "$RINGLET_LOG_TAG" "$*" >&2
}

# --- small utilities ------------------------------------------------------------

ringlet_nproc() {
    nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2
}

# Prints the command prefix that runs something as root: nothing when we are
# root, "sudo" (non-interactive when there is no terminal to ask a password
# on) otherwise. Fails with a clear message when neither is possible.
ringlet_root_prefix() {
    if [[ "$(id -u)" -eq 0 ]]; then
        return 0
    fi
    if ! command -v sudo >/dev/null 2>&1; then
        return 1
    fi
    if [[ -t 0 ]]; then
        echo sudo
    else
        echo "sudo -n"
    fi
}

# --- packages -------------------------------------------------------------------

# True when the Debian package is installed ("ii" in dpkg's status database).
# Unknown package names count as not installed.
ringlet_package_installed() {
    local status
    status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" || return 1
    [[ "$status" == ii* ]]
}

# apt-get update at most once per run, shared with child scripts through the
# environment so that scripts/test -> scripts/pg does not update twice.
ringlet_apt_update_once() {
    if [[ -n "${RINGLET_APT_UPDATED:-}" ]]; then
        return 0
    fi
    ringlet_log "apt-get update"
    # shellcheck disable=SC2086  # $1 is "" or "sudo" or "sudo -n": split on purpose
    $1 apt-get update -q >&2
    export RINGLET_APT_UPDATED=1
}

# Installs the packages of the list that are not installed yet; does nothing
# (and needs no root) when all are there.
# usage: ringlet_need_packages pkg...
ringlet_need_packages() {
    local missing=() pkg prefix
    if ! command -v dpkg-query >/dev/null 2>&1; then
        ringlet_warn "no dpkg-query: not a Debian-like system; make sure these are" \
            "installed (Debian names): $*"
        return 0
    fi
    for pkg in "$@"; do
        if ! ringlet_package_installed "$pkg"; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    if [[ "${RINGLET_NO_INSTALL:-}" == 1 ]]; then
        ringlet_warn "RINGLET_NO_INSTALL=1, not installing missing packages: ${missing[*]}"
        return 0
    fi
    if ! prefix="$(ringlet_root_prefix)"; then
        ringlet_die "missing packages: ${missing[*]}; installing them needs root or sudo." \
            "Run as root, or install them yourself:" \
            "apt-get install ${missing[*]} (then RINGLET_NO_INSTALL=1 silences this check)"
    fi
    ringlet_log "installing missing packages: ${missing[*]}"
    ringlet_apt_update_once "$prefix"
    # shellcheck disable=SC2086  # $prefix is "" or "sudo" or "sudo -n": split on purpose
    if ! $prefix env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        ringlet_die "apt-get install failed for: ${missing[*]}"
    fi
}

# Like ringlet_need_packages, but keyed on a command: installs PKG only when
# CMD is not on PATH. For tools that may come from elsewhere than Debian (npm
# installed with node's own installer, for instance), so we do not pull in a
# second copy.
# usage: ringlet_need_commands cmd:pkg...
ringlet_need_commands() {
    local spec pkgs=()
    for spec in "$@"; do
        if ! command -v "${spec%%:*}" >/dev/null 2>&1; then
            pkgs+=("${spec#*:}")
        fi
    done
    if [[ ${#pkgs[@]} -gt 0 ]]; then
        ringlet_need_packages "${pkgs[@]}"
    fi
}
