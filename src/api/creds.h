/* creds.h — the API key, team, base URL and SSH key path, found as the
 * Prime CLI finds them (PRIME_API.md 2): the environment first, then
 * ~/.prime/config.json (with PRIME_CONTEXT's saved environment laid over
 * it), then the defaults. A key file named by an option wins over both and
 * must not be readable by others. The key lives in memory excluded from
 * core dumps and is never logged. */
#ifndef PRIMEFS_CREDS_H
#define PRIMEFS_CREDS_H

#include <stddef.h>

#define PRIME_DEFAULT_BASE "https://api.primeintellect.ai"

struct creds {
	char *api_key;	/* NULL when none is configured */
	char *team_id;	/* NULL for the personal account */
	char *base_url; /* normalised: no trailing '/' or '/api/v1' */
	char *ssh_key_path;
	char *source; /* where the key came from, for the log */
};

/* 0, or -1 with a sentence in err. Warnings (a config readable by others)
 * go to the log. */
int creds_load(struct creds *c, const char *key_file, char *err, size_t errlen);
void creds_free(struct creds *c);

/* Overwrites PRIME_API_KEY's bytes in the environment block (which
 * /proc/PID/environ shows) and removes it. Call once creds_load has taken
 * the key, before any thread starts. */
void creds_scrub_environ(void);

/* 0 when the key may be sent to base_url: https://, or plain http:// to a
 * loopback host (127.0.0.0/8, ::1, localhost); else -1 with a sentence in
 * err. */
int base_url_check(const char *base_url, char *err, size_t errlen);

/* Strips trailing '/'s, then a trailing "/api/v1" (PRIME_API.md 1). */
char *normalize_base_url(const char *url);

#endif
