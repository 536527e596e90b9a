#!/bin/sh
# Copy the mounted configuration into /etc/asterisk, replacing the @PLACEHOLDER@ credentials from the
# environment, then run Asterisk in the foreground. Refuses to start with a placeholder left.
set -eu
# CTI_SRC / ASTERISK_ETC: where the repository is mounted and where Asterisk reads its config
# (tests/asterisk_conf runs this script on temporary directories)
cti_src=${CTI_SRC:-/opt/cti}
etc=${ASTERISK_ETC:-/etc/asterisk}
for f in "$cti_src"/asterisk-conf/*.conf "$cti_src"/dialplan/*.conf; do
    cp "$f" "$etc"/
done
# the carrier's SIP port, when it does not listen on the standard one
: "${CARRIER_PORT:=5060}"
case "$CARRIER_PORT" in
    ''|*[!0-9]*) echo "cti-asterisk: CARRIER_PORT must be a port number, got '$CARRIER_PORT'" >&2; exit 2 ;;
esac
if [ "$CARRIER_PORT" -lt 1 ] || [ "$CARRIER_PORT" -gt 65535 ]; then
    echo "cti-asterisk: CARRIER_PORT must be 1-65535, got $CARRIER_PORT" >&2
    exit 2
fi
for var in CTI_AMI_SECRET CARRIER_HOST CARRIER_PORT POSTGRES_PASSWORD; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "cti-asterisk: $var is not set" >&2
        exit 2
    fi
    # | as the sed delimiter: values are secrets/hosts, not paths
    sed -i "s|@$var@|$value|g" "$etc"/*.conf
done
if grep -l '@[A-Z0-9_]*@' "$etc"/*.conf >/dev/null 2>&1; then
    echo "cti-asterisk: unreplaced placeholder in $(grep -l '@[A-Z0-9_]*@' "$etc"/*.conf)" >&2
    exit 2
fi
# the dialplan's FastAGI address (host networking: the cti process listens on loopback)
sed -i "s|^CTI_AGI=.*|CTI_AGI=${CTI_AGI_URL:-agi://127.0.0.1:4573}|" "$etc"/extensions.conf
exec asterisk -f -vvv
