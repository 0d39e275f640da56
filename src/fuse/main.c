/* main.c — the command line: primefs's own -o options, --help and
 * --version, credentials, then the FUSE session (fs.c). */
#include <curl/curl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <json-c/json.h>
#include <libssh2.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cost.h"
#include "budget.h"
#include "vanished.h"
#include "creds.h"
#include "util.h"
#include "fs.h"
#include "check.h"
#include "collect.h"
#include "deadmount.h"
#include "guards.h"
#include "jobkey.h"
#include "jobs.h"
#include "lifecycle.h"
#include "nodes.h"
#include "pending.h"
#include "podfiles.h"
#include "podlog.h"
#include "template.h"
#include "log.h"
#include "runs.h"
#include "statedir.h"

/* Arguments that are not options. An fstab line of type fuse.primefs makes
 * mount.fuse3 run "primefs SOURCE MOUNTPOINT -o ...": the source means
 * nothing to primefs, so with two the first is dropped. */
struct nonopts {
	char *v[2];
	int n;
};

struct options {
	char *cafile, *config, *known_hosts, *ssh_key, *key_file, *state;
	double pods_ttl, offers_ttl, timeout, ready_timeout, output_cap_mib;
	double ssh_keepalive;
	double history_ttl;
	double fs_ttl;
	double lease_grace, guards_every;
	double jobs_keep_mib;
	int api_budget;
	double api_budget_window;
	double collect_timeout, collect_max_mib;
	int show_help, show_version, check;
	struct nonopts nonopts;
};

#define OPT(t, p)                                                              \
	{                                                                      \
		t, offsetof(struct options, p), 1                              \
	}
static const struct fuse_opt option_spec[] = {
    OPT("cafile=%s", cafile),
    OPT("config=%s", config),
    OPT("known_hosts=%s", known_hosts),
    OPT("ssh_key=%s", ssh_key),
    OPT("key_file=%s", key_file),
    OPT("state=%s", state),
    OPT("jobs_keep=%lf", jobs_keep_mib),
    OPT("collect_timeout=%lf", collect_timeout),
    OPT("collect_max=%lf", collect_max_mib),
    OPT("lease_grace=%lf", lease_grace),
    OPT("guards_every=%lf", guards_every),
    OPT("pods_ttl=%lf", pods_ttl),
    OPT("offers_ttl=%lf", offers_ttl),
    OPT("history_ttl=%lf", history_ttl),
    OPT("fs_ttl=%lf", fs_ttl),
    OPT("timeout=%lf", timeout),
    OPT("ready_timeout=%lf", ready_timeout),
    OPT("output_cap=%lf", output_cap_mib),
    OPT("ssh_keepalive=%lf", ssh_keepalive),
    OPT("api_budget=%d", api_budget),
    OPT("api_budget_window=%lf", api_budget_window),
    OPT("-h", show_help),
    OPT("--help", show_help),
    OPT("-V", show_version),
    OPT("--version", show_version),
    OPT("--check", check),
    FUSE_OPT_END,
};

static void usage(const char *prog)
{
	printf(
	    "usage: %s [-f] [-d] [-o option[,option...]] MOUNTPOINT\n"
	    "       %s --check [-o option[,option...]]\n"
	    "       fusermount3 -u MOUNTPOINT\n"
	    "\n"
	    "The Prime Intellect GPU cloud as files: availability/, "
	    "cheapest/,\n"
	    "pods/, history/, disks/, disk_offers/, ssh_keys/, plan/, budget,\n"
	    "balance, config, log, stats, ctl. See primefs(1).\n"
	    "\n"
	    "primefs options:\n"
	    "    -o cafile=FILE       CA bundle to verify the API's TLS with\n"
	    "    -o config=FILE       the pod template (default\n"
	    "                         $XDG_CONFIG_HOME/primefs/config)\n"
	    "    -o key_file=FILE     API key file (mode 0600; wins over "
	    "the environment)\n"
	    "    -o known_hosts=FILE  SSH host keys of pods (default\n"
	    "                         $XDG_CONFIG_HOME/primefs/known_hosts)\n"
	    "    -o ssh_key=FILE      SSH private key for pods (only it; "
	    "default: the\n"
	    "                         agent, then PRIME_SSH_KEY_PATH or "
	    "~/.ssh/id_rsa)\n"
	    "    -o state=DIR         guards and jobs kept here (default\n"
	    "                         $XDG_STATE_HOME/primefs); must be "
	    "yours and\n"
	    "                         writable by nobody else\n"
	    "    -o jobs_keep=MIB     jobs' outputs kept on disk, together; "
	    "the oldest\n"
	    "                         are dropped first (default 1024)\n"
	    "    -o collect_timeout=SECONDS how long bringing back what a "
	    "pod's collect\n"
	    "                         names may take before it goes "
	    "(default 300)\n"
	    "    -o collect_max=MIB   at most this much brought back per pod "
	    "(default 1024)\n"
	    "    -o lease_grace=SECONDS how long a released lease waits to "
	    "be taken again\n"
	    "                         before its pod is terminated "
	    "(default 60)\n"
	    "    -o guards_every=SECONDS how often a listing is asked for "
	    "an idle guard\n"
	    "                         not yet counting and a max_cost "
	    "guard's re-guess\n"
	    "                         (default 60; never more often than "
	    "pods_ttl)\n"
	    "    -o pods_ttl=SECONDS  freshness of pods, balance and pod "
	    "logs (default 5)\n"
	    "    -o offers_ttl=SECONDS freshness of offers (default 60)\n"
	    "    -o history_ttl=SECONDS freshness of history (default: "
	    "offers_ttl)\n"
	    "    -o fs_ttl=SECONDS    how long names and attributes of a "
	    "pod's files\n"
	    "                         are kept (default 1)\n"
	    "    -o timeout=SECONDS   limit for one API call, retries "
	    "included, and for\n"
	    "                         SSH connect and auth (default 10)\n"
	    "    -o ready_timeout=SECONDS how long a write to run waits for "
	    "a starting pod\n"
	    "                         (default 300)\n"
	    "    -o ssh_keepalive=SECONDS SSH keepalive interval; a pod "
	    "silent for 3 of\n"
	    "                         them while a job runs is lost "
	    "(default 15)\n"
	    "    -o api_budget=N      API calls sent in any rolling hour, "
	    "at most; POST\n"
	    "                         and DELETE are always sent "
	    "(default 900)\n"
	    "    -o api_budget_window=SECONDS the budget's rolling window "
	    "(default 3600;\n"
	    "                         shorter ones compress time for a "
	    "benchmark)\n"
	    "\n"
	    "environment: PRIME_API_KEY, PRIME_API_BASE_URL, PRIME_BASE_URL,\n"
	    "PRIME_TEAM_ID, PRIME_CONTEXT, PRIME_SSH_KEY_PATH, HOME (for\n"
	    "~/.prime/config.json), XDG_CONFIG_HOME, XDG_STATE_HOME.\n"
	    "\n"
	    "--check tells, one line each, whether the API key is found and\n"
	    "accepted, the team, the SSH key (and whether the account has it\n"
	    "registered), the state directory and FUSE are usable (exit\n"
	    "status 0 when all are); it mounts nothing.\n"
	    "\n",
	    prog, prog);
}

static void version(void)
{
	curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
	printf("primefs %s\n", PRIMEFS_VERSION);
	printf("libfuse %s\n", fuse_pkgversion());
	printf("libcurl %s (%s)\n", cv->version,
	       cv->ssl_version ? cv->ssl_version : "no TLS");
	printf("json-c %s\n", json_c_version());
	printf("libssh2 %s\n", libssh2_version(0));
}

/* $XDG_CONFIG_HOME/primefs/NAME, else ~/.config/primefs/NAME. */
static char *config_file(const char *name)
{
	struct buf b;
	buf_init(&b);
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		buf_printf(&b, "%s/primefs/%s", xdg, name);
	else
		buf_printf(&b, "%s/.config/primefs/%s",
			   home && *home ? home : "/root", name);
	return buf_steal(&b);
}

/* A path made absolute now, so that it means the same once fs_main has
 * gone to the background (and to /): the real path of a file that exists,
 * else the path against the current directory (config and known_hosts may
 * be created later). Frees p. */
static char *abs_path(char *p)
{
	if (!p || p[0] == '/')
		return p;
	char *r = realpath(p, NULL);
	if (!r) {
		char *cwd = getcwd(NULL, 0);
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "%s/%s", cwd ? cwd : ".", p);
		free(cwd);
		r = buf_steal(&b);
	}
	free(p);
	return r;
}

/* $XDG_STATE_HOME/primefs, else ~/.local/state/primefs. */
static char *state_dir(void)
{
	struct buf b;
	buf_init(&b);
	const char *xdg = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		buf_printf(&b, "%s/primefs", xdg);
	else
		buf_printf(&b, "%s/.local/state/primefs",
			   home && *home ? home : "/root");
	return buf_steal(&b);
}

/* Listed, for jobs_prune: every key but those of nodes 1, 2, ... of the
 * pod with id arg (nodes.h). */
static bool not_a_node_of(void *arg, const char *key)
{
	const char *id = arg;
	size_t len = strlen(id);
	return strncmp(key, id, len) || key[len] != '-' || !key[len + 1] ||
	       strspn(key + len + 1, "0123456789") != strlen(key + len + 1);
}

/* The pod is deleted: its jobs and sessions go, every node's. */
static void forget_pod(void *arg, const char *pod_id)
{
	jobs_pod_gone(arg, pod_id);
	jobs_prune(arg, not_a_node_of, (void *)pod_id);
}

/* A pods listing fetched from the API: the pods it lacks for sure were
 * deleted elsewhere (vanished.h, which ends their jobs). */
static struct vanished *vanished;
/* ... and the guards look at it (set while they exist). */
static pthread_mutex_t listing_mu = PTHREAD_MUTEX_INITIALIZER;
static struct guards *listing_guards;

static void prune_pods(void *arg, const struct snap *s)
{
	(void)arg;
	vanished_listing(vanished, s);
	pthread_mutex_lock(&listing_mu);
	guards_listing(listing_guards, s);
	pthread_mutex_unlock(&listing_mu);
}

/* collect borrows the pod's SFTP client that fs and home use (the pool
 * takes one per pod at a time); podfiles keeps it until unmount. */
static struct podfiles *lender;

static struct sftp *lend_sftp(void *arg, const char *id, const char *conn)
{
	struct podfiles *pf = *(struct podfiles **)arg;
	return pf ? podfiles_lend(pf, id, conn) : NULL;
}

static void return_sftp(void *arg, struct sftp *f)
{
	(void)arg;
	(void)f;
}

/* Whether an option word was given, in -o lists or on its own. */
static bool has_opt(struct fuse_args *args, const char *word)
{
	for (int i = 0; i < args->argc; i++)
		if (strstr(args->argv[i], word))
			return true;
	return false;
}

/* Options an /etc/fstab line may hold for mount(8) and systemd, which mean
 * nothing to primefs (mount.fuse3 drops some, not all): accepted, unused. */
static bool fstab_only(const char *arg)
{
	static const char *const words[] = {"defaults", "_netdev", "nofail",
					    "auto",	"noauto",  "user",
					    "users",	"nouser",  NULL};
	for (int i = 0; words[i]; i++)
		if (!strcmp(arg, words[i]))
			return true;
	return !strncmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8);
}

static int keep_nonopt(void *data, const char *arg, int key,
		       struct fuse_args *outargs)
{
	(void)outargs;
	struct options *o = data;
	if (key == FUSE_OPT_KEY_OPT && fstab_only(arg))
		return 0;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (o->nonopts.n == 2) {
		fprintf(stderr, "primefs: too many arguments: %s\n", arg);
		return -1;
	}
	o->nonopts.v[o->nonopts.n++] = xstrdup(arg);
	return 0;
}

static bool foreground(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "-d"))
			return true;
	return false;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options o = {.pods_ttl = 5,
			    .offers_ttl = 60,
			    .history_ttl = -1,
			    .fs_ttl = 1,
			    .timeout = 10,
			    .ready_timeout = 300,
			    .output_cap_mib = -1, /* unset */
			    .ssh_keepalive = 15,
			    .lease_grace = 60,
			    .guards_every = 60,
			    .jobs_keep_mib = 1024,
			    .api_budget = BUDGET_DEFAULT,
			    .api_budget_window = BUDGET_WINDOW,

			    .collect_timeout = 300,
			    .collect_max_mib = 1024};
	if (fuse_opt_parse(&args, &o, option_spec, keep_nonopt) == -1)
		return 2;
	if (o.nonopts.n)
		fuse_opt_add_arg(&args, o.nonopts.v[o.nonopts.n - 1]);
	/* A restart after a crash (kill -9) finds the mount point usable. */
	int dead = o.nonopts.n && !o.show_version && !o.show_help && !o.check
		       ? deadmount_clear(o.nonopts.v[o.nonopts.n - 1])
		       : 0;
	/* Where callers' paths must lead for mkdir to rent (intent.h). */
	char mnt_buf[PATH_MAX];
	const char *mountpoint =
	    o.nonopts.n ? realpath(o.nonopts.v[o.nonopts.n - 1], mnt_buf)
			: NULL;
	for (int i = 0; i < o.nonopts.n; i++)
		free(o.nonopts.v[i]);
	if (o.show_version) {
		version();
		fuse_opt_free_args(&args);
		return 0;
	}
	if (o.show_help) {
		usage(argv[0]);
		fs_help();
		fuse_opt_free_args(&args);
		return 0;
	}
	if (o.check) {
		char *state = abs_path(o.state ? o.state : state_dir());
		struct check_opts co = {
		    .cafile = o.cafile = abs_path(o.cafile),
		    .key_file = o.key_file = abs_path(o.key_file),
		    .ssh_key = o.ssh_key = abs_path(o.ssh_key),
		    .state = state,
		    .timeout = o.timeout > 0 ? o.timeout : 10};
		curl_global_init(CURL_GLOBAL_DEFAULT);
		int crc = check_run(&co);
		curl_global_cleanup();
		free(state);
		free(o.cafile);
		free(o.key_file);
		free(o.ssh_key);
		free(o.config);
		free(o.known_hosts);
		fuse_opt_free_args(&args);
		return crc;
	}
	if (o.history_ttl < 0)
		o.history_ttl = o.offers_ttl;
	if (o.pods_ttl < 0 || o.offers_ttl < 0 || o.fs_ttl < 0 ||
	    o.timeout <= 0 || o.ready_timeout < 0 || o.ssh_keepalive <= 0 ||
	    !(o.lease_grace >= 0) || !(o.guards_every > 0) ||
	    !(o.jobs_keep_mib >= 0) || o.jobs_keep_mib > 1e9 ||
	    o.api_budget < 1 || !(o.api_budget_window > 0) ||
	    !(o.collect_timeout >= 0) || !(o.collect_max_mib >= 0) ||
	    o.collect_max_mib > 1e9) {
		fprintf(stderr, "primefs: ttls, ready_timeout, lease_grace, "
				"jobs_keep, collect_timeout and collect_max "
				"must be >= 0, timeout, ssh_keepalive, "
				"guards_every, api_budget and "
				"api_budget_window > 0\n");
		return 2;
	}
	/* Readers of run and exit block while commands run: more threads
	 * than libfuse's default 10, so that they never starve the tree. */
	if (!has_opt(&args, "max_threads="))
		fuse_opt_add_arg(&args, "-omax_threads=64");
	/* Shared with others: the kernel enforces the modes node_mode()
	 * reports, so that others may read values and nothing more
	 * (DESIGN.md, "Credentials and trust"); fs.c checks the caller again.
	 * Unshared, the kernel lets no one else in, and default_permissions
	 * would only cost a GETATTR of the parent per lookup. */
	if (has_opt(&args, "allow_other") || has_opt(&args, "allow_root"))
		fuse_opt_add_arg(&args, "-odefault_permissions");

	o.cafile = abs_path(o.cafile);
	o.config = abs_path(o.config);
	o.known_hosts = abs_path(o.known_hosts);
	o.ssh_key = abs_path(o.ssh_key);
	o.key_file = abs_path(o.key_file);
	o.state = abs_path(o.state ? o.state : state_dir());
	/* Checked once, here: the mount is refused rather than keep guards
	 * and jobs where others could change them (statedir.h). */
	char *state_real, state_err[PATH_MAX + 300];
	int state_fd =
	    statedir_open(o.state, &state_real, state_err, sizeof state_err);
	if (state_fd < 0) {
		fprintf(stderr, "primefs: %s\n", state_err);
		return 1;
	}
	free(o.state);
	o.state = state_real;
	/* No core dumps and no ptrace by other processes of this user: the
	 * process holds the API key (DESIGN.md, "Credentials and trust"). */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	/* glibc gives each thread its own arena: with 64 FUSE threads a
	 * 10,000-offer listing costs twice its size in idle arenas. */
	mallopt(M_ARENA_MAX, 2);
	log_init(1000, foreground(argc, argv));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (dead > 0)
		plog("mount", "/",
		     "the dead mount a killed primefs left at %s was unmounted",
		     mountpoint ? mountpoint : "the mount point");

	struct creds cr;
	char err[512];
	int crc = creds_load(&cr, o.key_file, err, sizeof err);
	creds_scrub_environ();
	if (crc != 0) {
		fprintf(stderr, "primefs: %s\n", err);
		return 1;
	}
	if (base_url_check(cr.base_url, err, sizeof err) != 0) {
		fprintf(stderr, "primefs: %s\n", err);
		creds_free(&cr);
		return 1;
	}
	if (!cr.api_key)
		fprintf(stderr, "primefs: warning: no API key configured (set "
				"PRIME_API_KEY, run 'prime login', or use -o "
				"key_file=); reads will fail with EACCES\n");
	if (o.output_cap_mib != -1)
		plog("mount", "/",
		     "-o output_cap= is ignored: a command's output is kept "
		     "whole, on disk");
	plog("mount", "/", "API %s, key from %s%s%s", cr.base_url, cr.source,
	     cr.team_id ? ", team " : "", cr.team_id ? cr.team_id : "");

	struct budget *budget = budget_new(o.api_budget, o.api_budget_window);
	stats_set_source(budget_render, budget);
	struct http_opts ho = {.base_url = cr.base_url,
			       .api_key = cr.api_key,
			       .cafile = o.cafile,
			       .timeout = o.timeout,
			       .budget = budget};
	struct http_client *http = http_new(&ho);
	struct api api = {
	    .http = http, .team_id = cr.team_id, .budget = budget};
	double ttl[SNAP_KINDS] = {[SNAP_OFFERS] = o.offers_ttl,
				  [SNAP_PODS] = o.pods_ttl,
				  [SNAP_HISTORY] = o.history_ttl,
				  [SNAP_WALLET] = o.pods_ttl,
				  [SNAP_KEYS] = o.pods_ttl};
	ttl[SNAP_DISKS] = o.pods_ttl; /* disks: as fresh as pods */
	ttl[SNAP_DISK_OFFERS] = o.offers_ttl;
	struct cache *cache = cache_new(&api, ttl);
	cache_set_wait_limit(cache, o.timeout);
	char *config_path =
	    abs_path(o.config ? xstrdup(o.config) : config_file("config"));
	char *known_hosts =
	    abs_path(o.known_hosts ? xstrdup(o.known_hosts)
				   : config_file("known_hosts"));
	cr.ssh_key_path = abs_path(cr.ssh_key_path);
	struct ssh_opts so = {.known_hosts = known_hosts,
			      .key_path =
				  o.ssh_key ? o.ssh_key : cr.ssh_key_path,
			      .key_explicit = o.ssh_key != NULL,
			      .timeout = o.timeout,
			      .keepalive = o.ssh_keepalive};
	struct ssh_pool *pool = ssh_pool_new(&so);
	struct runs runs;
	runs_init(&runs, cache, &api, pool, o.ready_timeout);
	struct buf jobs_dir;
	buf_init(&jobs_dir);
	buf_printf(&jobs_dir, "%s/jobs", o.state);
	int jobs_fd = mkdir_p(state_fd, "jobs", false);
	struct jobs_opts jo = {
	    .dir = jobs_dir.data,
	    .dir_fd = jobs_fd,
	    .keep_bytes = (unsigned long long)(o.jobs_keep_mib * 1048576),
	    .runs = &runs};
	struct jobs *jobs = jobs_fd >= 0 ? jobs_new(&jo) : NULL;
	if (jobs_fd >= 0)
		close(jobs_fd);
	buf_free(&jobs_dir);
	if (!jobs) {
		fprintf(stderr,
			"primefs: cannot keep jobs in %s/jobs "
			"(-o state=)%s%s\n",
			o.state, jobs_fd < 0 ? ": " : "",
			jobs_fd < 0 ? strerror(-jobs_fd) : "");
		return 1;
	}
	vanished = vanished_new(&api, jobs);
	cache_set_pods_hook(cache, prune_pods, jobs);
	/* The log reads the same after a remount (DESIGN.md, "Guards"). */
	int kept = log_keep(o.state);
	if (kept)
		plog("mount", "/",
		     "%s/log: %s: the log is not kept across mounts", o.state,
		     strerror(-kept));
	struct template_store tmpl;
	template_store_init(&tmpl, config_path);
	struct lifecycle life;
	lifecycle_init(&life, cache, &api, &tmpl, cr.team_id);
	life.on_delete = forget_pod;
	life.on_delete_arg = jobs;
	/* Requests in flight are read back before the guards: a guard due on
	 * a placeholder at mount marks it unwanted. */
	struct pending *pending = pending_new(o.state, state_fd);
	lifecycle_set_pending(&life, pending);
	struct collect_opts co = {
	    .sftp_get = lend_sftp,
	    .sftp_put = return_sftp,
	    .sftp_arg = &lender,
	    .dir_fd = state_fd,
	    .cache = cache,
	    .pool = pool,
	    .timeout = o.collect_timeout,
	    .max = (unsigned long long)(o.collect_max_mib * 1048576)};
	struct collect *collect = collect_new(&co);
	life.collect = collect;
	struct guards_opts go = {.dir = o.state,
				 .dir_fd = state_fd,
				 .lease_grace = o.lease_grace,
				 /* One pods listing per check at most: an
				  * armed idle or max_cost guard must not
				  * spend the API's ~1000 calls an hour. */
				 .check_every = o.guards_every > o.pods_ttl
						    ? o.guards_every
						    : o.pods_ttl,
				 .cache = cache,
				 .life = &life,
				 .jobs = jobs,
				 .cost = cost_pod_at,
				 .cost_arg = cache};
	struct guards *guards = guards_new(&go);
	life.guards = guards;
	struct jobkey jobkey = {.key_path = so.key_path,
				.key_explicit = so.key_explicit,
				.mountpoint = mountpoint};
	life.jobkey = &jobkey;
	pthread_mutex_lock(&listing_mu);
	listing_guards = guards;
	pthread_mutex_unlock(&listing_mu);
	jobs_set_activity_hook(jobs, guards_job_activity, guards);
	struct podlog_opts plo = {.ttl = o.pods_ttl};
	struct podlog *podlog = podlog_new(&api, &plo);
	struct tree_opts to = {.cache = cache,
			       .tmpl = &tmpl,
			       .life = &life,
			       .podlog = podlog,
			       .guards = guards,
			       .runs = &runs,
			       .jobs = jobs,
			       .collect = collect};
	struct primefs pf = {.tree = tree_new(&to),
			     .cache = cache,
			     .runs = &runs,
			     .jobs = jobs,
			     .guards = guards,
			     .life = &life,
			     .mountpoint = mountpoint,
			     .pods = podfiles_new(cache, &runs),
			     .fs_ttl = o.fs_ttl};
	lender = pf.pods;
	/* The kernel keeps entries and attributes no longer than primefs
	 * keeps the answers behind them (fs.c invalidates what changes). */
	pf.kernel_ttl = o.pods_ttl;
	if (o.offers_ttl < pf.kernel_ttl)
		pf.kernel_ttl = o.offers_ttl;
	if (o.history_ttl < pf.kernel_ttl)
		pf.kernel_ttl = o.history_ttl;

	int rc = fs_main(&args, &pf);

	/* Settling stops first (its hook re-keys guards); then the guards go,
	 * before anything they use, warning of guards left armed. */
	lifecycle_stop(&life);
	pending_set_hook(pending, NULL, NULL);
	collect_stop(collect); /* a guard's termination does not wait for it */
	jobs_set_activity_hook(jobs, NULL, NULL);
	pthread_mutex_lock(&listing_mu);
	listing_guards = NULL;
	pthread_mutex_unlock(&listing_mu);
	guards_free(guards);
	podlog_free(podlog);
	lifecycle_destroy(&life);
	/* Fetches still running end first: the pods hook prunes runs, and
	 * the replace hook tells the tree. */
	cache_free(cache);
	pending_free(pending);
	collect_free(collect);
	tree_free(pf.tree);
	jobs_free(jobs);
	vanished_free(vanished);
	podfiles_free(pf.pods);
	runs_destroy(&runs);
	ssh_pool_free(pool);
	free(known_hosts);
	template_store_destroy(&tmpl);
	http_free(http);
	stats_set_source(NULL, NULL);
	budget_free(budget);
	creds_free(&cr);
	free(config_path);
	fuse_opt_free_args(&args);
	free(o.cafile);
	free(o.config);
	free(o.known_hosts);
	free(o.ssh_key);
	free(o.key_file);
	free(o.state);
	close(state_fd);
	curl_global_cleanup();
	log_shutdown();
	return rc;
}
