-- BinktermPHP's mail integration (seed 000, "Database Schema" and step 3 of
-- the Debian guide), copied exactly: mail_users with its indexes and the
-- grants of the binkterm_mail role (the role and GRANT CONNECT are made by
-- import_test.sh: they name the database).
--
-- Not in the seed, so written here: the BBS's own users table (mail_users
-- references users(id); only its id matters) and mail_aliases, which the
-- seed grants and queries (virtual_alias_maps.cf: SELECT destination FROM
-- mail_aliases WHERE source = '%s') but never creates: its columns are the
-- two that query reads.
CREATE TABLE users (id SERIAL PRIMARY KEY, username TEXT NOT NULL);
CREATE TABLE mail_aliases (source TEXT NOT NULL, destination TEXT NOT NULL);

CREATE TABLE mail_users (
id SERIAL PRIMARY KEY,
user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
email TEXT NOT NULL UNIQUE, -- username@yourbbs.com
mail_password TEXT NOT NULL, -- bcrypt hash (separate from BBS password)
maildir TEXT NOT NULL, -- absolute path, e.g. /var/mail/vhosts/yourbbs.com/username/
quota_mb INTEGER NOT NULL DEFAULT 200,
enabled BOOLEAN NOT NULL DEFAULT TRUE,
created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX idx_mail_users_user_id ON mail_users(user_id);
CREATE INDEX idx_mail_users_email ON mail_users(email);

GRANT SELECT ON mail_users TO binkterm_mail;
GRANT SELECT ON mail_aliases TO binkterm_mail;
