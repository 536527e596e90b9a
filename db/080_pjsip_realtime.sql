-- Agents' phones for Asterisk's own realtime driver (res_config_pgsql + sorcery.conf, decision 0306).
-- Table, column and enum names are those of Asterisk's alembic migrations
-- (contrib/ast-db-manage/config/versions: 43956d550a44 creates the tables, 6c475a93f48a id 255,
-- 437f004ee12c realm 255, 3772f8f828da identify_by as text, 1ac563b350a8 send_connected_line,
-- 465f47f880be google_oauth). Only the columns we set are here; Asterisk reads a missing column
-- as unset. `cti agents add/disable/reset-password` write these rows; nothing else does.
CREATE TYPE yesno_values AS ENUM ('yes', 'no');
CREATE TYPE pjsip_auth_type_values AS ENUM ('md5', 'userpass', 'google_oauth');

CREATE TABLE ps_endpoints (
    id                  varchar(255) NOT NULL UNIQUE,
    transport           varchar(40),
    aors                varchar(200),
    auth                varchar(255),
    context             varchar(40),
    disallow            varchar(200),
    allow               varchar(200),
    direct_media        yesno_values,
    force_rport         yesno_values,
    identify_by         varchar(80),
    rewrite_contact     yesno_values,
    rtp_symmetric       yesno_values,
    send_pai            yesno_values,
    send_connected_line yesno_values,
    callerid            varchar(40),
    language            varchar(40)
);
CREATE INDEX ps_endpoints_id ON ps_endpoints (id);

CREATE TABLE ps_auths (
    id          varchar(255) NOT NULL UNIQUE,
    auth_type   pjsip_auth_type_values,
    md5_cred    varchar(40),      -- md5(username:realm:password): the plain password is never stored
    password    varchar(80),      -- always NULL here
    realm       varchar(255),
    username    varchar(40)
);
CREATE INDEX ps_auths_id ON ps_auths (id);

CREATE TABLE ps_aors (
    id                varchar(255) NOT NULL UNIQUE,
    max_contacts      integer,
    remove_existing   yesno_values,
    qualify_frequency integer
);
CREATE INDEX ps_aors_id ON ps_aors (id);

-- when the agent's SIP password was last generated (add or reset-password); who disabled them and when
ALTER TABLE agents ADD COLUMN sip_password_set_at timestamptz;
ALTER TABLE agents ADD COLUMN disabled_at timestamptz;
