#!/usr/bin/env bash
# Prepares the secrets of deploy/compose.yaml (run as root, once per site):
#   deploy/secrets.sh AUTH_DIR SECRETS_DIR
# AUTH_DIR is the folder `gridwatch mqtt gen-auth` wrote; SECRETS_DIR gets the database
# password, the center's libpq password file and the token-signing key (each made once, kept
# when present). Every file is 0600, owned by the container user that reads it: the center
# image's uid 10001, eclipse-mosquitto's 1883, the TimescaleDB (Alpine) image's postgres, 70.
set -euo pipefail
auth=${1:?usage: deploy/secrets.sh AUTH_DIR SECRETS_DIR}
out=${2:?usage: deploy/secrets.sh AUTH_DIR SECRETS_DIR}
[ "$(id -u)" = 0 ] || { echo "run as root: the files are handed to the containers' users" >&2; exit 1; }
[ -f "$auth/passwd" ] || { echo "$auth/passwd missing: run gridwatch mqtt gen-auth --out $auth first" >&2; exit 1; }
install -d -m 0755 "$out"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
[ -s "$out/db_password" ] || random > "$out/db_password"
[ -s "$out/secret_key" ] || random > "$out/secret_key"
printf 'postgres:5432:gridwatch:gridwatch:%s\n' "$(cat "$out/db_password")" > "$out/db_pgpass"
chown 70:70 "$out/db_password"
chown 10001:10001 "$out/db_pgpass" "$out/secret_key"
chmod 0600 "$out/db_password" "$out/db_pgpass" "$out/secret_key"
chown 1883:1883 "$auth/passwd" "$auth/acl"
chmod 0600 "$auth/passwd"
chown 10001:10001 "$auth"/center*.secret "$auth"/edges/*.secret
chmod 0755 "$auth" "$auth/edges"
echo "secrets ready in $out; accounts in $auth handed to the broker (1883) and the centers (10001)"
