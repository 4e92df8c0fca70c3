/*
 * helper_driver.h: what the channel-layer drivers (layer_driver.c,
 * redis_driver.c, history_driver.c) share: tokens, the `config` line,
 * messages in and out as JSON, result words, the `group_send` operation and
 * the main loop over Redis. Linked into every tool in tests/tools.
 * Single-threaded.
 */
#ifndef HERALD_TEST_HELPER_DRIVER_H
#define HERALD_TEST_HELPER_DRIVER_H

#include <stddef.h>

#include "layer/layer.h"

/* The next space-separated token of *p, cut in place; NULL when *p is NULL.
 * After the last token *p becomes NULL. */
char *driver_next_tok(char **p);

/*
 * `config [capacity N] [expiry S] [group_expiry S] [cc GLOB N]...`: destroy
 * *layer and create it again with ops, hosts and these options (cc rules in
 * order). decode, when not NULL, turns a GLOB token into the pattern.
 * Returns 0, HR_EINVAL for a bad line, or what hr_layer_create returns.
 */
int driver_configure(hr_layer **layer, const hr_layer_ops *ops, const char *const *hosts,
    size_t n_hosts, char *rest, void (*decode)(const char *tok, char *out, size_t outlen));

/* Free what driver_configure keeps (the cc patterns). */
void driver_fini(void);

/* A message from a JSON object (one reference, the caller's). */
int driver_json_msg(const char *json, hr_msg **out);

/* ok | full | badname | empty | error <reason>, on one line. */
void driver_print_result(int rv);

/* The message as JSON on one line. */
void driver_print_msg(hr_msg *m);

/* hr_layer_group_send(layer, group, m), then its line: ok delivered=N
 * full=M, or driver_print_result's. Borrows m. */
void driver_group_send(hr_layer *layer, const char *group, hr_msg *m);

/* The `group_send G JSON` operation on the rest of its line: error input
 * for a missing group or a JSON that is not an object, else
 * driver_group_send. */
void driver_group_send_op(hr_layer *layer, char *rest);

/*
 * The main loop of a driver over Redis: `NAME --redis URL[,URL...]` puts the
 * URLs into hosts (at most max; they point into argv), then hands each line
 * of stdin, its line end cut, to run and flushes stdout after it. 0 at the
 * end of stdin, 2 after the usage line.
 */
int driver_redis_loop(int argc, char **argv, const char *name, const char **hosts, size_t *n_hosts,
    size_t max, void (*run)(char *line));

#endif
