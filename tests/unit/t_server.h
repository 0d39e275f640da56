/* t_server.h — a tiny in-process HTTP/1.1 server for the unit tests that
 * need libcurl to talk to something real: it listens on 127.0.0.1, answers
 * each connection on a thread of its own from the script the test set, and
 * counts the requests that came and the answers it sent. */
#ifndef PRIMEFS_T_SERVER_H
#define PRIMEFS_T_SERVER_H

#include <stdbool.h>

struct t_answer {
	int status;	     /* 200 unless the script says */
	const char *headers; /* extra header lines, each ending in \r\n */
	char body[4096];     /* "{}" unless the script says */
	double delay;	     /* seconds to wait before answering */
};

/* Fills in the answer to a request for `path` (as it came on the request
 * line), the nth (from 0) since the script was set. Runs on the request's
 * own thread when it has come, under the server's lock (so it must not call
 * t_server_*): quick, the delay is waited outside it. */
typedef void (*t_script_fn)(const char *path, int nth, struct t_answer *a);

/* Starts the server (once per process); returns its port. */
int t_server_start(void);
/* Answers from now on with `fn`, counting requests from 0 again. */
void t_server_script(t_script_fn fn);
/* Requests that have come, answers sent (both since the script was set). */
int t_server_requests(void);
int t_server_answered(void);
/* While on, every answer waits, once its request has come and been
 * counted, until it is turned off (a minute at most, so that a test that
 * forgets fails rather than hangs): "on the wire" for as long as the test
 * needs, whatever the machine's load. */
void t_server_hold(bool on);
/* The path of the last request that came (valid until the next one). */
const char *t_server_last_path(void);

#endif
