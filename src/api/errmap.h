/* errmap.h — the one place that turns an HTTP or transport failure into an
 * errno (DESIGN.md's table) and a `log` line that says the real reason: the
 * API's `detail` text, each item of a 422 list, or libcurl's error. */
#ifndef PRIMEFS_ERRMAP_H
#define PRIMEFS_ERRMAP_H

#include "http.h"

/* The errno for a failed call (positive), and its reason in msg. */
int http_errno(const struct http_resp *r, struct buf *msg);

/* Logs "<op> <path>: <reason>" and returns -errno. */
int api_fail(const char *op, const char *path, const struct http_resp *r);

#endif
