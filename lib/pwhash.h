/* pwhash.h - password hashes in Dovecot's {SCHEME} form: make one with
 * libxcrypt, check the form of a ready one, verify one (for tests).
 *
 * Made:    yescrypt -> {CRYPT}$y$...   bcrypt -> {BLF-CRYPT}$2b$NN$...
 *          sha512   -> {SHA512-CRYPT}$6$...
 * Checked: {CRYPT} ($y$ $gy$ $2a$ $2b$ $2y$ $5$ $6$ $7$), {BLF-CRYPT},
 *          {SHA512-CRYPT}, {SHA256-CRYPT}, {ARGON2ID}.
 * The form is checked, not the parameters' cost: a hash libxcrypt would
 * take hours to compute still passes. */
#ifndef MR_PWHASH_H
#define MR_PWHASH_H

#include "buf.h"

#define PW_BCRYPT_COST_DEFAULT 12   /* libxcrypt's own default (5) is too low */
#define PW_BCRYPT_COST_MIN 4
#define PW_BCRYPT_COST_MAX 31
#define PW_BCRYPT_MAX_PLAIN 72      /* bcrypt ignores every byte after these */
#define PW_HASH_MAX 512             /* longest hash accepted, prefix included */

/* Hash plain with scheme "yescrypt", "bcrypt" or "sha512" (NULL means
 * yescrypt) and append the prefixed hash to out. bcrypt_cost is used by
 * bcrypt only (4..31). 0, or -1 with *why set and out unchanged. Wipes
 * its own copies of plain; the caller wipes plain. */
int pw_hash_make(const char *scheme, int bcrypt_cost, const char *plain, struct buf *out,
                 const char **why);

/* Is hash a well-formed hash of an accepted scheme? 1, or 0 with *why
 * saying which part is wrong (the message never quotes the hash). */
int pw_hash_check(const char *hash, const char **why);

/* 1 when plain matches hash; 0 on a mismatch and also when it cannot tell
 * (a malformed hash, {ARGON2ID}, a crypt failure). */
int pw_hash_verify(const char *hash, const char *plain);

#endif
