#!/bin/sh
# Copy the mounted configuration into /etc/asterisk, replacing the @PLACEHOLDER@ credentials from the
# environment, then run Asterisk in the foreground. Refuses to start with a placeholder left.
set -eu
src=/opt/cti/asterisk-conf
for f in "$src"/*.conf /opt/cti/dialplan/*.conf; do
    cp "$f" /etc/asterisk/
done
for var in CTI_AMI_SECRET AGENT1_PASSWORD AGENT2_PASSWORD AGENT3_PASSWORD CARRIER_HOST POSTGRES_PASSWORD; do
    eval "value=\${$var:-}"
    if [ -z "$value" ]; then
        echo "cti-asterisk: $var is not set" >&2
        exit 2
    fi
    # | as the sed delimiter: values are secrets/hosts, not paths
    sed -i "s|@$var@|$value|g" /etc/asterisk/*.conf
done
if grep -l '@[A-Z0-9_]*@' /etc/asterisk/*.conf >/dev/null 2>&1; then
    echo "cti-asterisk: unreplaced placeholder in $(grep -l '@[A-Z0-9_]*@' /etc/asterisk/*.conf)" >&2
    exit 2
fi
# the dialplan's FastAGI address (host networking: the cti process listens on loopback)
sed -i "s|^CTI_AGI=.*|CTI_AGI=${CTI_AGI_URL:-agi://127.0.0.1:4573}|" /etc/asterisk/extensions.conf
exec asterisk -f -vvv
