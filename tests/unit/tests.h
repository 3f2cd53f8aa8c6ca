/* tests.h - the unit test suites (check). */
#ifndef MR_TESTS_H
#define MR_TESTS_H

#include <check.h>

#include "buf.h"
#include "dir.h"

Suite *codec_suite(void);
Suite *addr_suite(void);
Suite *cfg_suite(void);
Suite *dir_suite(void);
Suite *proto_suite(void);
Suite *pwhash_suite(void);
Suite *admproto_suite(void);
Suite *auth_suite(void);
Suite *policy_suite(void);
Suite *polproto_suite(void);
Suite *quota_suite(void);
Suite *peer_suite(void);
Suite *pqlog_suite(void);
Suite *roster_proto_suite(void);
Suite *srv_suite(void);
Suite *verify_parse_suite(void);
Suite *features_suite(void);

/* A small directory with the edge cases every suite uses. */
struct dir *fixture_dir(void);

/* Free n buffers (a zero-initialized struct buf is an empty one). */
static inline void bufs_free(struct buf *b, int n)
{
    for (int i = 0; i < n; i++)
        buf_free(&b[i]);
}

#endif
