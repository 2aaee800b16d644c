/* SPDX-License-Identifier: MIT */
/*
 * `bulkhead top` (see commands.h): a live view made of status requests. A small event loop of
 * its own: a timerfd paces the requests (never more than one out), a signalfd takes
 * SIGINT/SIGTERM/SIGWINCH/SIGTSTP, stdin is polled for `q`. It owns the terminal while it
 * runs (alternate screen, non-canonical no-echo input) and gives it back on every way out;
 * off a terminal it prints one plain line per refresh.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/control-client.h"

#define TOP_INTERVAL_MIN 0.1 /* seconds */
#define TOP_INTERVAL_MAX 3600.0
#define TOP_DONE (-1) /* top_on_socket: --count reached */
#define TOP_GROUPS_MAX 64 /* groups whose rate top follows (the status reply lists more) */
#define TOP_EVENTS 8 /* lines of the recent events pane */
#define TOP_BAR 20 /* characters of a group's progress bar */
#define TOP_SMOOTH 0.3 /* weight of the newest interval in a group's rate (EWMA) */

/* Jobs that ended by running (done, failed, crashed, timed_out): the rate of `top`. */
static int64_t jobs_finished(json_object *reply)
{
	json_object *jobs = jget(reply, "jobs");

	return jint0(jobs, "done") + jint0(jobs, "failed") + jint0(jobs, "crashed") +
	       jint0(jobs, "timed_out");
}

static int64_t deaths_total(json_object *reply)
{
	json_object *deaths = jget(jget(reply, "workers"), "deaths");
	int64_t n = 0;

	if (!deaths || !json_object_is_type(deaths, json_type_object))
		return 0;
	json_object_object_foreach(deaths, name, count)
	{
		(void)name;
		n += json_object_is_type(count, json_type_int) ? json_object_get_int64(count) : 0;
	}
	return n;
}
/* ---- top ---- */

/* A group's rate of ended jobs, smoothed over the refreshes, for its ETA. */
struct top_rate {
	char name[64];
	int64_t ended; /* at the last reply */
	double rate; /* jobs/s; < 0 until two replies */
};

struct top {
	const char *socket_opt;
	int interval_ms;
	long count; /* refreshes before exiting; 0: until q */
	bool tty; /* stdout is a terminal: full screen */
	bool keys; /* stdin is a terminal too: read q */
	bool raw; /* termios changed: `saved` must be restored */
	bool screen; /* on the alternate screen */
	struct termios saved;
	struct cli_session s;
	bool pending; /* a status request is out */
	int64_t sent_at;
	json_object *last; /* the last reply, for redraws */
	json_object *prev; /* the one before, for jobs/s */
	int64_t prev_at, last_at; /* when they came (control_client_now_ms) */
	double rate; /* jobs/s; < 0 until two replies came */
	long shown;
	struct top_rate groups[TOP_GROUPS_MAX];
	size_t n_groups;
};

static struct top *top_active; /* for the atexit hook */

static void top_enter(struct top *t)
{
	struct termios raw;

	if (t->keys && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
	}
	if (t->tty) {
		/* alternate screen, cursor hidden */
		fputs("\033[?1049h\033[?25l", stdout);
		fflush(stdout);
		t->screen = true;
	}
}

static void top_leave(struct top *t)
{
	if (t->screen) {
		fputs("\033[?25h\033[?1049l", stdout);
		fflush(stdout);
		t->screen = false;
	}
	if (t->raw) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
		t->raw = false;
	}
}

static void top_atexit(void)
{
	if (top_active)
		top_leave(top_active);
}

/* One plain line per refresh, when stdout is not a terminal. */
static void top_print_line(struct top *t, FILE *f)
{
	json_object *r = t->last, *pools = jget(r, "pools");
	int64_t up = 0, wanted = 0, busy = 0, threads = 0;
	char rate[32] = "-";

	for (size_t i = 0; i < jlen(pools); i++) {
		json_object *p = json_object_array_get_idx(pools, i), *ws = jget(p, "workers");

		up += jint0(p, "workers_up");
		wanted += jint0(p, "workers_wanted");
		threads += jint0(p, "threads") * (int64_t)jlen(ws);
		for (size_t k = 0; k < jlen(ws); k++)
			busy += jint0(json_object_array_get_idx(ws, k), "jobs_running");
	}
	if (t->rate >= 0)
		str_printf(rate, sizeof(rate), "%.1f", t->rate);
	cli_print_daemon(f, r);
	fprintf(f, "; %s jobs/s; ", rate);
	cli_print_jobs_counts(f, jget(r, "jobs"), false);
	fprintf(f, "; workers %lld/%lld up, %lld/%lld threads busy; %lld restarts, %lld crashes\n",
		(long long)up, (long long)wanted, (long long)busy, (long long)threads,
		(long long)jint0(jget(r, "workers"), "restarts"), (long long)deaths_total(r));
}

/* Jobs of a group (from the status reply's "groups") that have ended, cancelled ones too. */
static int64_t group_ended(json_object *g)
{
	return jint0(g, "done") + jint0(g, "failed") + jint0(g, "crashed") +
	       jint0(g, "timed_out") + jint0(g, "cancelled");
}

static struct top_rate *top_group_rate(struct top *t, const char *name)
{
	for (size_t i = 0; i < t->n_groups; i++)
		if (strcmp(t->groups[i].name, name) == 0)
			return &t->groups[i];
	if (t->n_groups == TOP_GROUPS_MAX || strlen(name) >= sizeof(t->groups[0].name))
		return NULL;
	t->groups[t->n_groups] = (struct top_rate){ .ended = -1, .rate = -1 };
	strcpy(t->groups[t->n_groups].name, name);
	return &t->groups[t->n_groups++];
}

/* A new reply came dt seconds after the last: each group's rate, smoothed. */
static void top_update_rates(struct top *t, json_object *reply, double dt)
{
	json_object *groups = jget(reply, "groups");

	for (size_t i = 0; i < jlen(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		struct top_rate *r = top_group_rate(t, jstr(g, "name") ? jstr(g, "name") : "");
		int64_t ended = group_ended(g);
		double now;

		if (!r)
			continue;
		if (r->ended >= 0 && dt > 0 && ended >= r->ended) {
			now = (double)(ended - r->ended) / dt;
			r->rate = r->rate < 0 ? now : TOP_SMOOTH * now + (1 - TOP_SMOOTH) * r->rate;
		}
		r->ended = ended;
	}
}

/* "1h02m", "3m20s", "45s", or "-" when it cannot be told. */
static void format_eta(char *buf, size_t size, int64_t left, double rate)
{
	double s;

	if (left == 0) {
		str_printf(buf, size, "done");
		return;
	}
	if (!(rate > 0)) {
		str_printf(buf, size, "-");
		return;
	}
	s = (double)left / rate;
	if (s >= 359999)
		str_printf(buf, size, ">99h");
	else if (s >= 3600)
		str_printf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
	else if (s >= 60)
		str_printf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
	else
		str_printf(buf, size, "%ds", (int)s + (s > (int)s));
}

/* Per-group progress: a bar, ended/total, failed, crashed (timed out too), ETA. */
static void top_groups(struct top *t, FILE *f)
{
	static const char *const heads[] = { "GROUP",  "POOL",	  "PROGRESS", "ENDED",
					     "FAILED", "CRASHED", "ETA",      NULL };
	json_object *groups = jget(t->last, "groups");
	struct table tb;

	if (jlen(groups) == 0)
		return;
	table_init(&tb, heads, "lllrrrr");
	for (size_t i = 0; i < jlen(groups); i++) {
		json_object *g = json_object_array_get_idx(groups, i);
		const char *name = jstr(g, "name") ? jstr(g, "name") : "";
		struct top_rate *r = top_group_rate(t, name);
		int64_t total = jint0(g, "total"), ended = group_ended(g);
		char bar[TOP_BAR + 8], n[3][32], eta[16];
		int filled = total > 0 ? (int)(ended * TOP_BAR / total) : TOP_BAR;

		for (int k = 0; k < TOP_BAR; k++)
			bar[k] = k < filled ? '#' : '.';
		str_printf(bar + TOP_BAR, sizeof(bar) - TOP_BAR, " %3d%%",
			   total > 0 ? (int)(ended * 100 / total) : 100);
		str_printf(n[0], sizeof(n[0]), "%lld/%lld", (long long)ended, (long long)total);
		str_printf(n[1], sizeof(n[1]), "%lld", (long long)jint0(g, "failed"));
		str_printf(n[2], sizeof(n[2]), "%lld",
			   (long long)(jint0(g, "crashed") + jint0(g, "timed_out")));
		format_eta(eta, sizeof(eta), total - ended, r ? r->rate : -1);
		table_add(&tb, (const char *const[]){ name, jstr(g, "pool"), bar, n[0], n[1], n[2],
						      eta });
	}
	fputc('\n', f);
	table_print(&tb, f, "", 0, tb.n_rows);
	table_free(&tb);
}

/* The newest events, newest first, with their local time. */
static void top_events(struct top *t, FILE *f)
{
	json_object *events = jget(t->last, "events");

	if (jlen(events) == 0)
		return;
	fputs("\nrecent events:\n", f);
	for (size_t i = 0; i < jlen(events) && i < TOP_EVENTS; i++) {
		json_object *e = json_object_array_get_idx(events, i);
		double at = 0;
		time_t secs;
		struct tm tm;
		char when[16] = "--:--:--";

		if (jnum(e, "at", &at)) {
			secs = (time_t)at;
			if (localtime_r(&secs, &tm))
				strftime(when, sizeof(when), "%H:%M:%S", &tm);
		}
		fprintf(f, "  %s  %-7s  %s\n", when, jstr(e, "level") ? jstr(e, "level") : "",
			jstr(e, "text") ? jstr(e, "text") : "");
	}
}

static void top_frame(struct top *t, FILE *f)
{
	char rate[32] = "-";

	if (t->rate >= 0)
		str_printf(rate, sizeof(rate), "%.1f", t->rate);
	fputs("bulkhead top: ", f);
	cli_print_daemon(f, t->last);
	fprintf(f, "; %s jobs/s; crashes %lld%s\n", rate, (long long)deaths_total(t->last),
		t->keys ? "    (q quits)" : "");
	cli_print_jobs_counts(f, jget(t->last, "jobs"), true);
	fputc('\n', f);
	cli_print_workers(f, t->last);
	fputc('\n', f);
	cli_print_pools(f, t->last, true);
	top_groups(t, f);
	top_events(t, f);
}

/* Renders `text` on the screen, cropped to the terminal. */
static void top_paint(const char *text)
{
	struct winsize ws = {};
	unsigned rows = 24, cols = 80, row = 0;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		rows = ws.ws_row;
		cols = ws.ws_col;
	}
	fputs("\033[H", stdout);
	for (const char *l = text; *l && row < rows; row++) {
		size_t len = strcspn(l, "\n");

		if (row > 0)
			fputs("\n", stdout);
		fprintf(stdout, "%.*s\033[K", (int)(len < cols ? len : cols), l);
		l += len + (l[len] == '\n');
	}
	fputs("\033[J", stdout);
	fflush(stdout);
}

static void top_show(struct top *t)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	if (!t->last)
		return;
	if (!t->tty) {
		top_print_line(t, stdout);
		fflush(stdout);
		return;
	}
	f = open_memstream(&text, &size);
	if (!f)
		return;
	top_frame(t, f);
	if (fclose(f) == 0)
		top_paint(text);
	free(text);
}

/* A reply came: keep it, work out jobs/s, show it. */
static int top_take(struct top *t, char *line)
{
	json_object *reply = cli_parse_reply(t->s.path, line);
	int64_t now = control_client_now_ms();
	double up0, up1, dt;

	free(line);
	if (!reply)
		return -EBADMSG;
	if (!cli_reply_ok(reply)) {
		cli_say("%s", cli_reply_error(reply));
		json_object_put(reply);
		return -EPROTO;
	}
	json_object_put(t->prev);
	t->prev = t->last;
	t->prev_at = t->last_at;
	t->last = reply;
	t->last_at = now;
	t->rate = -1;
	if (t->prev) {
		/* the daemon's clock when it has one, else ours */
		if (jnum(t->prev, "uptime_seconds", &up0) && jnum(reply, "uptime_seconds", &up1) &&
		    up1 > up0)
			dt = up1 - up0;
		else
			dt = (double)(t->last_at - t->prev_at) / 1000;
		if (dt > 0)
			t->rate = (double)(jobs_finished(reply) - jobs_finished(t->prev)) / dt;
		if (t->rate < 0 && dt > 0)
			t->rate = 0; /* counts went down: a reload removed jobs */
		top_update_rates(t, reply, dt);
	} else {
		top_update_rates(t, reply, 0);
	}
	t->shown++;
	top_show(t);
	return 0;
}

/* Sends the next status request, connecting first if needed. 0 or EXIT_CONTROL_FAILED. */
static int top_request(struct top *t)
{
	int64_t deadline = control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS;
	int r;

	if (t->pending)
		return 0; /* the daemon is slow: no pile-up of requests */
	if (!t->s.c) {
		r = cli_session_open(&t->s, t->socket_opt, deadline);
		if (r != 0)
			return r;
	}
	r = control_client_send(t->s.c, "{\"command\":\"status\"}", deadline);
	if (r < 0) {
		cli_say("%s: %s", t->s.path, control_client_strerror(r));
		return EXIT_CONTROL_FAILED;
	}
	t->pending = true;
	t->sent_at = control_client_now_ms();
	return 0;
}

/*
 * The socket is readable. TOP_DONE when --count is reached, 0 to go on, else an exit code
 * (TOP_DONE is none: EXIT_CONTROL_FAILED is 1, which once meant "done" here).
 */
static int top_on_socket(struct top *t)
{
	char *line;
	int r;

	for (;;) {
		r = control_client_try_receive(t->s.c, &line);
		if (r == 0)
			return 0;
		if (r == -ECONNRESET && !t->pending) {
			/* closed between requests: reconnect at the next tick */
			cli_session_close(&t->s);
			return 0;
		}
		if (r < 0) {
			cli_say("%s: %s", t->s.path, control_client_strerror(r));
			return EXIT_CONTROL_FAILED;
		}
		t->pending = false;
		if (top_take(t, line) < 0)
			return EXIT_CONTROL_FAILED;
		if (t->count && t->shown >= t->count)
			return TOP_DONE;
	}
}

/* Stopped with ^Z: give the terminal back, stop, take it again when continued. */
static void top_suspend(struct top *t)
{
	top_leave(t);
	kill(getpid(), SIGSTOP);
	top_enter(t);
	top_show(t);
}

static int top_loop(struct top *t, int sfd, int tfd)
{
	for (;;) {
		struct pollfd pfd[4] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = tfd, .events = POLLIN },
			{ .fd = t->keys ? STDIN_FILENO : -1, .events = POLLIN },
			{ .fd = t->s.c ? control_client_fd(t->s.c) : -1, .events = POLLIN },
		};
		int timeout = -1, r;

		if (t->pending) {
			int64_t left = t->sent_at + CONTROL_CLIENT_TIMEOUT_MS - control_client_now_ms();

			if (left <= 0) {
				cli_say("%s: %s", t->s.path, control_client_strerror(-ETIMEDOUT));
				return EXIT_CONTROL_FAILED;
			}
			timeout = (int)left;
		}
		r = poll(pfd, 4, timeout);
		if (r < 0 && errno != EINTR) {
			cli_say("poll: %s", strerror(errno));
			return EXIT_CONTROL_FAILED;
		}
		if (r <= 0)
			continue;
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGWINCH)
					top_show(t);
				else if (si.ssi_signo == SIGTSTP)
					top_suspend(t);
				else
					return 0; /* SIGINT, SIGTERM: a normal way out */
			}
		}
		if (pfd[2].revents & (POLLIN | POLLHUP)) {
			char keys[64];
			ssize_t n = read(STDIN_FILENO, keys, sizeof(keys));

			if (n <= 0)
				t->keys = false; /* EOF: no more keys, ^C still works */
			for (ssize_t i = 0; i < n; i++)
				if (keys[i] == 'q' || keys[i] == 'Q')
					return 0;
		}
		if (pfd[3].revents) {
			r = top_on_socket(t);
			if (r != 0)
				return r == TOP_DONE ? 0 : r;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == sizeof(ticks)) {
				r = top_request(t);
				if (r != 0)
					return r;
			}
		}
	}
}

static int top_parse(struct top *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "socket", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	double secs;
	char *end;
	int o;

	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0) {
		switch (o) {
		case 'i':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(secs >= TOP_INTERVAL_MIN) ||
			    secs > TOP_INTERVAL_MAX)
				return cli_usage_error("top",
						       "--interval %s: expected seconds, %g..%g",
						       optarg, TOP_INTERVAL_MIN, TOP_INTERVAL_MAX);
			t->interval_ms = (int)(secs * 1000 + 0.5);
			break;
		case 'n':
			if (!cli_parse_long(optarg, 1, INT32_MAX, &t->count))
				return cli_usage_error(
					"top", "--count %s: expected a positive integer", optarg);
			break;
		case 'S':
			t->socket_opt = optarg;
			break;
		case 'h':
			cli_usage("top", stdout);
			return 0;
		default:
			return cli_bad_option("top", o, argv);
		}
	}
	if (optind < argc)
		return cli_usage_error("top", "unexpected argument '%s'", argv[optind]);
	return -1;
}

/* timerfd every interval_ms, the first expiry at once; signalfd for what top handles. */
static int top_fds(struct top *t, int *ret_sfd, int *ret_tfd)
{
	struct itimerspec its = {
		.it_value = { .tv_nsec = 1 },
		.it_interval = { .tv_sec = t->interval_ms / 1000,
				 .tv_nsec = (long)(t->interval_ms % 1000) * 1000000 },
	};
	sigset_t mask;
	int sfd, tfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGWINCH);
	sigaddset(&mask, SIGTSTP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return -errno;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) {
		int r = -errno;

		if (tfd >= 0)
			close(tfd);
		close(sfd);
		return r;
	}
	*ret_sfd = sfd;
	*ret_tfd = tfd;
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct top t = { .interval_ms = 1000, .rate = -1 };
	int sfd = -1, tfd = -1, r;

	r = top_parse(&t, argc, argv);
	if (r >= 0)
		return r;
	/* Connect before taking the terminal, so that an error is plain to see. */
	r = cli_session_open(&t.s, t.socket_opt,
			     control_client_now_ms() + CONTROL_CLIENT_TIMEOUT_MS);
	if (r != 0)
		return r;
	r = top_fds(&t, &sfd, &tfd);
	if (r < 0) {
		cli_say("top: %s", strerror(-r));
		cli_session_close(&t.s);
		return EXIT_CONTROL_FAILED;
	}
	t.tty = isatty(STDOUT_FILENO);
	t.keys = t.tty && isatty(STDIN_FILENO);
	top_active = &t;
	cli_before_error = top_atexit;
	atexit(top_atexit);
	top_enter(&t);
	r = top_loop(&t, sfd, tfd);
	top_leave(&t);
	top_active = NULL;
	cli_before_error = NULL;
	close(sfd);
	close(tfd);
	json_object_put(t.last);
	json_object_put(t.prev);
	cli_session_close(&t.s);
	return r;
}
