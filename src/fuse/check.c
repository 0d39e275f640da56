/* check.c — see check.h. Each check prints its line as soon as it knows;
 * the reason an API call failed is the line errmap.c logged for it. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "snapindex.h"
#include "sshkeys.h"
#include "creds.h"
#include "http.h"
#include "jobkey.h"
#include "log.h"
#include "ssh.h"
#include "util.h"

static int failed;

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void ok(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ok    ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL  ", stdout);
	vprintf(fmt, ap);
	putchar('\n');
	va_end(ap);
	failed = 1;
}

/* The newest log line's message (after "op path: "), into out. */
static void last_reason(char *out, size_t len)
{
	struct buf b;
	buf_init(&b);
	log_render(&b);
	snprintf(out, len, "no reason logged");
	if (b.len) {
		b.data[b.len - 1] = '\0';
		char *line = strrchr(b.data, '\n');
		line = line ? line + 1 : b.data;
		char *msg = strstr(line, ": ");
		snprintf(out, len, "%s", msg ? msg + 2 : line);
	}
	buf_free(&b);
}

static void check_api(const struct check_opts *o, struct creds *cr)
{
	char err[512];
	if (base_url_check(cr->base_url, err, sizeof err)) {
		fail("API base URL: %s", err);
		return;
	}
	if (!cr->api_key) {
		fail("API key: none found: run 'prime login', set "
		     "PRIME_API_KEY, or pass -o key_file=FILE (mode 0600)");
		fail("team: not checked without an API key");
		return;
	}
	struct http_opts ho = {.base_url = cr->base_url,
			       .api_key = cr->api_key,
			       .cafile = o->cafile,
			       .timeout = o->timeout};
	struct http_client *http = http_new(&ho);
	struct api api = {.http = http, .team_id = cr->team_id};
	struct wallet w = {0};
	int rc = api_get_wallet(&api, -1, &w);
	wallet_free(&w);
	http_free(http);
	char why[512];
	last_reason(why, sizeof why);
	if (rc == 0) {
		ok("API key (from %s): accepted by %s", cr->source,
		   cr->base_url);
		if (cr->team_id)
			ok("team %s: the key may use it", cr->team_id);
		else
			ok("team: none (the personal account; set "
			   "PRIME_TEAM_ID or 'prime config set-team-id' for "
			   "a team)");
	} else if (rc == -EACCES) {
		fail("API key (from %s): refused by %s (%s): run 'prime "
		     "login' again, or check PRIME_API_KEY%s",
		     cr->source, cr->base_url, why,
		     cr->team_id ? " and the team" : "");
		if (cr->team_id)
			fail("team %s: refused with the key: check "
			     "PRIME_TEAM_ID or 'prime config set-team-id'",
			     cr->team_id);
		else
			ok("team: none (the personal account)");
	} else {
		fail("API at %s: no answer (%s): check the network, "
		     "PRIME_API_BASE_URL and -o cafile=",
		     cr->base_url, why);
		fail("team: not checked (the API did not answer)");
	}
}

/* Whether the account has the key jobs use registered, as mkdir asks it
 * (jobkey.h: else mkdir is refused): one GET /ssh_keys/. */
static void check_registered(const struct check_opts *o, const struct creds *cr,
			     const char *path)
{
	const char *what = "SSH key registered with your account";
	if (!cr->api_key || base_url_check(cr->base_url, NULL, 0)) {
		printf("--    %s: not checked without the API\n", what);
		return;
	}
	struct http_opts ho = {.base_url = cr->base_url,
			       .api_key = cr->api_key,
			       .cafile = o->cafile,
			       .timeout = o->timeout};
	struct http_client *http = http_new(&ho);
	struct api api = {.http = http, .team_id = cr->team_id};
	struct key_list l;
	int rc = api_list_keys(&api, &l);
	http_free(http);
	char *id = NULL;
	if (rc == 0) {
		struct snap *keys = snap_from_keys(&l);
		struct jobkey k = {.key_path = path,
				   .key_explicit = o->ssh_key};
		rc = jobkey_id_in(&k, keys, "--check", &id);
		snap_put(keys);
	}
	if (rc == 0 && id)
		ok("%s (key id %s)", what, id);
	else if (rc == 0)
		printf("--    %s: not checked (no key of primefs's own)\n",
		       what);
	else if (rc == -EACCES)
		fail("%s: not registered, so mkdir is refused: once mounted, "
		     "cp %s.pub MOUNTPOINT/ssh_keys/NAME",
		     what, path);
	else
		fail("%s: not checked (%s)", what, strerror(-rc));
	free(id);
}

static void check_ssh(const struct check_opts *o, const struct creds *cr)
{
	const char *path = o->ssh_key ? o->ssh_key : cr->ssh_key_path;
	const char *agent = getenv("SSH_AUTH_SOCK");
	bool has_agent = !o->ssh_key && agent && *agent;
	if (!path || access(path, R_OK)) {
		if (has_agent)
			ok("SSH key: the ssh agent (%s); its keys are not "
			   "checked, and no key file at %s",
			   agent, path ? path : "(none)");
		else
			fail("SSH key %s: %s: make one with 'ssh-keygen -t "
			     "ed25519' and pass -o ssh_key=FILE (or set "
			     "PRIME_SSH_KEY_PATH)",
			     path ? path : "(none)",
			     path ? strerror(errno) : "none configured");
		return;
	}
	char type[64];
	ssh_key_type(path, type, sizeof type);
	bool rsa = !strcmp(type, "ssh-rsa");
	if (rsa && ssh_rsa_refused())
		fail("SSH key %s is RSA: libssh2 %s signs RSA with SHA-1 "
		     "only, which current OpenSSH (on pods) refuses: make an "
		     "ed25519 key ('ssh-keygen -t ed25519'), register it with "
		     "your account and pass -o ssh_key=FILE",
		     path, libssh2_version(0));
	else if (!strcmp(type, "unknown") && ssh_rsa_refused())
		fail("SSH key %s: its type is unknown (no %s.pub beside it); "
		     "an RSA key does not work with libssh2 %s: use an "
		     "ed25519 key, with its .pub beside it",
		     path, path, libssh2_version(0));
	else
		ok("SSH key %s (%s)%s", path, type,
		   has_agent ? ", after the ssh agent's keys" : "");
	check_registered(o, cr, path);
}

static void check_state(const char *dir)
{
	struct stat st;
	if (stat(dir, &st)) {
		if (errno == ENOENT)
			ok("state directory %s: made at the first mount", dir);
		else
			fail("state directory %s: %s: pass -o state=DIR", dir,
			     strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode))
		fail("state directory %s: not a directory: pass -o state=DIR",
		     dir);
	else if (st.st_uid != geteuid())
		fail("state directory %s: owned by uid %u, not you (uid %u): "
		     "chown it, or pass -o state=DIR",
		     dir, (unsigned)st.st_uid, (unsigned)geteuid());
	else if (st.st_mode & 022)
		fail("state directory %s: others may write in it (mode %03o): "
		     "chmod go-w %s",
		     dir, (unsigned)(st.st_mode & 0777), dir);
	else
		ok("state directory %s", dir);
}

/* An executable named name in PATH (or the usual places). */
static bool in_path(const char *name)
{
	const char *path = getenv("PATH");
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "%s:/usr/bin:/bin", path && *path ? path : "");
	bool found = false;
	for (char *save, *d = strtok_r(b.data, ":", &save); d && !found;
	     d = strtok_r(NULL, ":", &save)) {
		struct buf f;
		buf_init(&f);
		buf_printf(&f, "%s/%s", d, name);
		found = access(f.data, X_OK) == 0;
		buf_free(&f);
	}
	buf_free(&b);
	return found;
}

static void check_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		close(fd);
	bool fm = in_path("fusermount3");
	if (fd < 0)
		fail("FUSE: cannot open /dev/fuse (%s): install fuse3 and "
		     "load the module (modprobe fuse); in a container, give "
		     "it /dev/fuse",
		     strerror(e));
	else if (!fm)
		fail("FUSE: fusermount3 not found: install fuse3");
	else
		ok("FUSE: /dev/fuse and fusermount3");
}

int check_run(const struct check_opts *o)
{
	failed = 0;
	log_init(64, false);
	struct creds cr;
	char err[512];
	if (creds_load(&cr, o->key_file, err, sizeof err)) {
		fail("API key: %s", err);
		fail("team: not checked without an API key");
		memset(&cr, 0, sizeof cr);
	} else {
		check_api(o, &cr);
	}
	check_ssh(o, &cr);
	check_state(o->state);
	check_fuse();
	creds_free(&cr);
	log_shutdown();
	return failed;
}
