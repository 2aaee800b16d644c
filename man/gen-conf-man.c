/* SPDX-License-Identifier: MIT */
/*
 * gen-conf-man: writes bulkhead.conf(5) in roff to stdout, at build time.
 *
 *   gen-conf-man SYSCONFDIR
 *
 * The key entries (type, default, range, doc) come from config_keys[] and
 * config_section_names[] (config/keys.h), the builtin job list from bh_builtin_table[]
 * (common/builtins.h) and the limits from config/config.h: the same tables the parser
 * uses, so the page cannot drift from what the parser accepts. The prose around them
 * (file format, value syntax, errors) follows docs/config.md. SYSCONFDIR is where
 * bulkhead.conf is installed ("/etc" for prefix /usr). Exit 0, or 1 if stdout cannot be
 * written or a builtin's text does not fit its arguments (builtin_docs[]), 2 on a usage
 * error.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/builtins.h"
#include "common/units.h"
#include "config/config.h"
#include "config/keys.h"

#define RANGE_TEXT_MAX 256

/*
 * What each builtin does. The argument names, types, defaults and ranges come from
 * bh_builtin_args[] (common/builtins.h, which the worker applies): "{default:KEY}" in a text
 * is KEY's default ("forever" for a time of UINT64_MAX), "{range:KEY}" its range MIN..MAX.
 * Every argument's default must appear in its builtin's text (else gen-conf-man fails); a
 * builtin missing here still gets an entry, and a warning on stderr.
 */
static const struct {
	const char *name;
	const char *text;
} builtin_docs[] = {
	{ "noop", "Returns at once." },
	{ "spin", "Burns CPU for \\fBus\\fR microseconds (default {default:us})." },
	{ "sleep", "Sleeps \\fBms\\fR milliseconds (default {default:ms})." },
	{ "balance",
	  "The shared-counter lesson: the job's threads add and subtract \\fBamount\\fR "
	  "(default {default:amount}) on one balance shared by the worker, \\fBiterations\\fR "
	  "times (default {default:iterations}), under a named lock when \\fBlock\\fR is "
	  "{default:lock} (the default). Fails if the balance is not 0 at the end; with lock=no "
	  "it shows the race." },
	{ "tls", "Binds a value in thread-local storage \\fBrounds\\fR times (default "
		 "{default:rounds}), yields, and fails if another thread's value leaked in." },
	{ "fail",
	  "Returns non-zero (fails) with \\fBprobability\\fR (default {default:probability})." },
	{ "segv", "Raises SIGSEGV with \\fBprobability\\fR (default {default:probability})." },
	{ "abort",
	  "Calls abort(3) (SIGABRT) with \\fBprobability\\fR (default {default:probability})." },
	{ "fpe",
	  "Divides by zero (SIGFPE) with \\fBprobability\\fR (default {default:probability})." },
	{ "ill", "Runs an illegal instruction (SIGILL) with \\fBprobability\\fR (default "
		 "{default:probability})." },
	{ "bus", "Touches a truncated shared mapping (SIGBUS) with \\fBprobability\\fR (default "
		 "{default:probability})." },
	{ "stack-overflow", "Recurses without bound (SIGSEGV, caught on the alternate stack)." },
	{ "exit",
	  "Calls exit(3) with \\fBcode\\fR ({range:code}, default {default:code}) from the job "
	  "thread." },
	{ "hang", "Loops without yielding for \\fBms\\fR milliseconds (default: {default:ms})." },
	{ "deadlock",
	  "Takes two named locks in the opposite order to its twin (the next job of the group) "
	  "and waits forever." },
	{ "leak", "Allocates and touches memory, \\fBstep\\fR bytes at a time (a size, default "
		  "{default:step}), until an allocation fails." },
};

static const char *builtin_doc(const char *name)
{
	for (size_t i = 0; i < sizeof(builtin_docs) / sizeof(builtin_docs[0]); i++)
		if (strcmp(builtin_docs[i].name, name) == 0)
			return builtin_docs[i].text;
	return NULL;
}

/*
 * Writes s as roff text: backslashes and minus signs escaped, and a '.' or '\'' that would
 * start a line made harmless.
 */
static void roff_text(const char *s, FILE *f)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

/*
 * A doc string as a sentence: a full stop at the end, and a capital at the start unless
 * the first word is a piece of the file's syntax ("key=value", "stop:").
 */
static void roff_sentence(const char *s, FILE *f, bool capital)
{
	size_t n = strlen(s), word = strcspn(s, " ");
	bool plain = word > 0;

	for (size_t i = 0; i < word; i++)
		plain = plain && isalpha((unsigned char)s[i]);
	if (capital && plain) {
		fputc(toupper((unsigned char)s[0]), f);
		s++;
	}
	roff_text(s, f);
	if (n > 0 && s[strlen(s) - 1] != '.')
		fputc('.', f);
	fputc('\n', f);
}

static const char *type_name(const struct config_key *k)
{
	switch (k->type) {
	case CONFIG_TYPE_STRING:
		return "string";
	case CONFIG_TYPE_PATH:
		return "path";
	case CONFIG_TYPE_UINT:
		return "integer";
	case CONFIG_TYPE_DURATION:
		return "duration";
	case CONFIG_TYPE_DURATION_RANGE:
		return "LO..HI";
	case CONFIG_TYPE_RATE:
		return "COUNT/DURATION";
	case CONFIG_TYPE_SIZE:
		return "size";
	case CONFIG_TYPE_ENUM:
		return "enum";
	case CONFIG_TYPE_POOL:
		return "pool name";
	case CONFIG_TYPE_RUN:
		return "KIND:...";
	case CONFIG_TYPE_ARGS:
		return "KEY=VALUE ...";
	case CONFIG_TYPE_GLOB:
		return "glob";
	case CONFIG_TYPE_DIR:
		return "directory";
	}
	return "?";
}

static const char *duration_range(uint64_t min, uint64_t max, char *buf, size_t size)
{
	char a[FORMAT_DURATION_MAX], b[FORMAT_DURATION_MAX];

	if (min == 1 && max == USEC_INFINITY)
		snprintf(buf, size, "greater than 0, or infinity");
	else
		snprintf(buf, size, "%s..%s", format_duration(a, sizeof(a), min),
			 format_duration(b, sizeof(b), max));
	return buf;
}

/* The accepted values of key k, in words. */
static const char *range_text(const struct config_key *k, char *buf, size_t size)
{
	char a[FORMAT_SIZE_MAX], b[FORMAT_SIZE_MAX], r[RANGE_TEXT_MAX];
	size_t n = 0;

	switch (k->type) {
	case CONFIG_TYPE_STRING:
		snprintf(buf, size, "%llu..%llu characters, no whitespace",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_PATH:
		snprintf(buf, size, "empty, or an absolute path of at most %llu bytes",
			 (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_UINT:
		snprintf(buf, size, "%llu..%llu", (unsigned long long)k->min,
			 (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_DURATION:
		duration_range(k->min, k->max, buf, size);
		break;
	case CONFIG_TYPE_DURATION_RANGE:
		snprintf(buf, size, "each bound %s, LO <= HI; a single duration means LO = HI",
			 duration_range(k->min, k->max, r, sizeof(r)));
		break;
	case CONFIG_TYPE_RATE:
		snprintf(buf, size, "COUNT %llu..%llu, DURATION greater than 0 and finite",
			 (unsigned long long)k->min, (unsigned long long)k->max);
		break;
	case CONFIG_TYPE_SIZE:
		snprintf(buf, size, "%s..%s", format_size(a, sizeof(a), k->min),
			 format_size(b, sizeof(b), k->max));
		break;
	case CONFIG_TYPE_ENUM:
		buf[0] = '\0';
		for (const struct config_choice *c = k->choices; c && c->name; c++) {
			snprintf(buf + n, size - n, "%s%s", n ? ", " : "one of ", c->name);
			n = strlen(buf);
		}
		break;
	case CONFIG_TYPE_POOL:
		snprintf(buf, size,
			 "the name of a [pool NAME] section of the file (or the "
			 "implicit pool main)");
		break;
	case CONFIG_TYPE_RUN:
		snprintf(buf, size,
			 "builtin:NAME with a NAME from BUILTIN JOBS below, plugin:PATH:SYMBOL or "
			 "exec:COMMAND ARGS... (RUN KINDS below)");
		break;
	case CONFIG_TYPE_ARGS:
		snprintf(
			buf, size,
			"for a builtin, the arguments it takes (BUILTIN JOBS below); for plugin and "
			"exec jobs, any words KEY=VALUE, KEY 1..64 characters of A-Z a-z 0-9 _ . -, "
			"each KEY once");
		break;
	case CONFIG_TYPE_GLOB:
		snprintf(buf, size,
			 "empty, or a glob(3) pattern (braces allowed) that matches at least one "
			 "regular file; a relative pattern is relative to the directory of the "
			 "config file");
		break;
	case CONFIG_TYPE_DIR:
		snprintf(buf, size,
			 "empty, or a directory that exists when the config is loaded; a relative "
			 "path is relative to the directory of the config file");
		break;
	}
	return buf;
}

static void print_key(const struct config_key *k, FILE *f)
{
	char range[RANGE_TEXT_MAX];

	fputs(".TP\n\\fB", f);
	roff_text(k->name, f);
	fputs(" =\\fR \\fI", f);
	roff_text(type_name(k), f);
	fputs("\\fR\n", f);
	roff_sentence(k->doc, f, true);
	fputs(".br\nDefault: ", f);
	if (!k->def) {
		fputs("none: the key is required.\n", f);
	} else if (!*k->def) {
		fputs("empty.\n", f);
	} else {
		fputs("\\fB", f);
		roff_text(k->def, f);
		fputs("\\fR.\n", f);
	}
	fputs(".br\nValues: ", f);
	roff_sentence(range_text(k, range, sizeof(range)), f, false);
}

static void print_keys(enum config_section_kind kind, FILE *f)
{
	for (int i = 0; i < _CONFIG_KEY_MAX; i++)
		if (config_keys[i].section == kind)
			print_key(&config_keys[i], f);
}

static bool builtin_docs_bad; /* a text does not fit its builtin's arguments: exit 1 */

static void doc_error(const char *builtin, const char *what, const char *key)
{
	fprintf(stderr, "gen-conf-man: builtin %s: %s '%s'\n", builtin, what, key);
	builtin_docs_bad = true;
}

/* An argument's default as a config would write it. */
static void print_default(const struct bh_builtin_arg *a, FILE *f)
{
	char buf[FORMAT_SIZE_MAX];

	switch (a->type) {
	case BH_ARG_TYPE_UINT:
		if (a->def.u == UINT64_MAX)
			fputs("forever", f);
		else
			fprintf(f, "%llu", (unsigned long long)a->def.u);
		break;
	case BH_ARG_TYPE_SIZE:
		fputs(format_size(buf, sizeof(buf), a->def.u), f);
		break;
	case BH_ARG_TYPE_BOOL:
		fputs(a->def.u ? "yes" : "no", f);
		break;
	case BH_ARG_TYPE_PROB:
		fprintf(f, "%g", a->def.p);
		break;
	}
}

/* The text of builtin b with its {default:KEY} and {range:KEY} filled in from the table. */
static void print_doc(enum bh_builtin b, const char *doc, FILE *f)
{
	const char *name = bh_builtin_table[b].name;
	bool shown[_BH_ARG_MAX] = { false };

	while (*doc) {
		const char *open = strchr(doc, '{'), *close, *colon;
		const struct bh_builtin_arg *a;
		char key[64];

		if (!open) {
			fputs(doc, f);
			break;
		}
		fwrite(doc, 1, (size_t)(open - doc), f);
		close = strchr(open, '}');
		colon = close ? memchr(open, ':', (size_t)(close - open)) : NULL;
		if (!colon) {
			doc_error(name, "unterminated placeholder at", open);
			return;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(close - colon - 1), colon + 1);
		a = bh_builtin_arg(b, key);
		if (!a || a->builtin != b) {
			doc_error(name, "placeholder for an argument it does not take", key);
		} else if (strncmp(open, "{default:", 9) == 0) {
			print_default(a, f);
			shown[a - bh_builtin_args] = true;
		} else if (strncmp(open, "{range:", 7) == 0) {
			fprintf(f, "%llu..%llu", (unsigned long long)a->min,
				(unsigned long long)a->max);
		} else {
			doc_error(name, "unknown placeholder for", key);
		}
		doc = close + 1;
	}
	for (int i = 0; i < _BH_ARG_MAX; i++)
		if (bh_builtin_args[i].builtin == b && !shown[i])
			doc_error(name, "text does not give the default of",
				  bh_builtin_args[i].key);
}

/* ".TP", the name with each argument and its type, then what it does. */
static void print_builtin(enum bh_builtin b, FILE *f)
{
	const char *name = bh_builtin_table[b].name;
	const char *doc = builtin_doc(name);

	fputs(".TP\n\\fBbuiltin:", f);
	roff_text(name, f);
	fputs("\\fR", f);
	for (int i = 0; i < _BH_ARG_MAX; i++) {
		if (bh_builtin_args[i].builtin != b)
			continue;
		fputs(" \\fI", f);
		roff_text(bh_builtin_args[i].key, f);
		fputs("\\fR=", f);
		roff_text(bh_arg_type_name(bh_builtin_args[i].type), f);
	}
	fputc('\n', f);
	if (doc) {
		print_doc(b, doc, f);
		fputc('\n', f);
	} else {
		fputs("(Not described yet.)\n", f);
		fprintf(stderr, "gen-conf-man: warning: builtin '%s' has no description\n", name);
	}
}

static void print_head(const char *sysconfdir, FILE *f)
{
	fprintf(f,
		".\\\" Generated by man/gen-conf-man from config/keys.h: do not edit.\n"
		".TH BULKHEAD.CONF 5 \"\" \"bulkhead %s\" \"File Formats Manual\"\n"
		".SH NAME\n"
		"bulkhead.conf \\- configuration of the bulkhead job supervisor\n"
		".SH SYNOPSIS\n"
		".I %s/bulkhead/bulkhead.conf\n"
		".SH DESCRIPTION\n"
		"bulkhead runs jobs on pools of worker processes, each with a pool of job threads, and\n"
		"supervises them: a job that crashes, hangs or eats memory takes down only its own\n"
		"worker, is blamed, and is re-run or quarantined.\n"
		".BR bulkheadd (8)\n"
		"reads its config from the file above (or the one given with\n"
		".BR \\-c );\n"
		".B bulkhead run\n"
		"(see\n"
		".BR bulkhead (1))\n"
		"reads the file named on its command line.\n"
		"Both load a config the same way, and exit with status 78 on any error, before\n"
		"anything is spawned.\n"
		"A reload of the daemon (SIGHUP) with a broken file keeps the running config.\n"
		".PP\n"
		"The file is an INI file with three kinds of sections:\n"
		".B [supervisor]\n"
		"(at most one),\n"
		".B [pool\n"
		".IB NAME ]\n"
		"(groups of identical worker processes) and\n"
		".B [job\n"
		".IB NAME ]\n"
		"(job groups).\n"
		"Every key has a default, except\n"
		".BR run .\n"
		"Check a file with\n"
		".B bulkhead check\\-config\n"
		".IR FILE :\n"
		"it prints the effective config (every key, with the defaults filled in) or the\n"
		"errors.\n"
		"The keys, their types, defaults and ranges on this page are generated from the\n"
		"table the parser itself uses.\n",
		BULKHEAD_VERSION, sysconfdir);
}

static void print_format(FILE *f)
{
	fprintf(f,
		".SS \"File format\"\n"
		".TP\n"
		".B Sections\n"
		".BR [supervisor] ,\n"
		".BI \"[pool \" NAME ]\n"
		"and\n"
		".BI \"[job \" NAME ]\\fR.\n"
		".I NAME\n"
		"is 1 to %d characters of A\\-Z a\\-z 0\\-9 _ . \\-.\n"
		"Pools and job groups have separate name spaces.\n"
		"A section may be empty (a\n"
		".B [pool solo]\n"
		"line alone is a pool with every default).\n"
		"A section cannot appear twice.\n"
		".TP\n"
		".B Keys\n"
		".IR key \" = \" value ,\n"
		"one per line.\n"
		"Whitespace around the key and the value is dropped; whitespace inside the value is\n"
		"kept.\n"
		"Keys are case-sensitive.\n"
		"A key cannot appear twice in a section, and every key must be in a section.\n"
		"Unknown sections and keys are errors (with a \"did you mean\" suggestion).\n"
		".TP\n"
		".B Comments\n"
		"A line whose first non-blank character is\n"
		".B #\n"
		"or\n"
		".BR ; ,\n"
		"and the rest of a line from a\n"
		".B #\n"
		"or\n"
		".B ;\n"
		"that follows whitespace\n"
		"(\\fBworkers = 3   # three\\fR).\n"
		"A\n"
		".B #\n"
		"or\n"
		".B ;\n"
		"with no whitespace before it is part of the value\n"
		"(\\fBcontrol_group = a#b\\fR is a#b), so a value cannot contain \" #\" or \" ;\".\n"
		"After a section header, only a comment may follow the\n"
		".BR ] .\n"
		".TP\n"
		".B Continuation lines\n"
		"A line that starts with whitespace, right after a key line (blank and comment lines\n"
		"may come between), continues that key's value; the parts are joined with one space.\n"
		"This is mostly for long\n"
		".B args\n"
		"values:\n"
		".RS\n"
		".PP\n"
		".nf\n"
		"args = iterations=100000\n"
		"       amount=5 lock=yes\n"
		".fi\n"
		".PP\n"
		"is\n"
		".BR \"args = iterations=100000 amount=5 lock=yes\" .\n"
		"Only the first key line of a section may be indented without continuing anything,\n"
		"so do not indent keys; the error message of a value that continued by mistake names\n"
		"the line where it continued.\n"
		"A line starting with\n"
		".B [\n"
		"is always a section header, even when indented.\n"
		".RE\n"
		".TP\n"
		".B The file\n"
		"A regular file of at most %s, read whole before it is parsed.\n"
		"A FIFO, a device (such as\n"
		".IR /dev/zero ),\n"
		"a socket or a directory is an error that is found without reading it\n"
		"(\\(lqbulkhead.conf: not a regular file (a FIFO)\\(rq), and so is a larger file\n"
		"(\\(lqbulkhead.conf: too large (2000000 bytes; at most 1 MiB)\\(rq), also one that\n"
		"grows past the limit while it is read: loading a config never waits.\n"
		".TP\n"
		".B Line endings\n"
		"LF or CRLF (the CR is dropped).\n"
		"A UTF\\-8 byte order mark at the start of the file is skipped.\n"
		"A NUL byte anywhere is an error.\n"
		".TP\n"
		".B Line length\n"
		"A line may be up to %d bytes long, not counting its line ending (nor the byte order\n"
		"mark).\n"
		"A longer line is an error that names the line; nothing is ever cut silently.\n"
		"A value joined over its continuation lines may be at most %d bytes minus the length\n"
		"of its key minus 3, so that\n"
		".B check\\-config\n"
		"can print it back on one line as\n"
		".IR key \" = \" value .\n"
		"(Debian's libinih cuts lines at 199 bytes; bulkhead reads lines itself and hands\n"
		"libinih a canonical form, so this limit, not libinih's, applies.)\n",
		CONFIG_NAME_MAX, CONFIG_FILE_MAX_TEXT, CONFIG_LINE_MAX, CONFIG_LINE_MAX);
}

static void print_types(FILE *f)
{
	fputs(".SS \"Value types\"\n"
	      ".TP\n"
	      ".I integer\n"
	      "Decimal digits only: no sign, no spaces, no 0x.\n"
	      ".TP\n"
	      ".I duration\n"
	      "A number with a unit:\n"
	      ".BR us ,\n"
	      ".BR ms ,\n"
	      ".BR s ,\n"
	      ".B min\n"
	      "or\n"
	      ".BR h .\n"
	      "Fractions are allowed (\\fB1.5s\\fR, rounded down to whole microseconds);\n"
	      ".B 0\n"
	      "needs no unit;\n"
	      ".B infinity\n"
	      "where the key allows it.\n"
	      ".TP\n"
	      ".I LO..HI\n"
	      "A duration range: two durations with LO <= HI (\\fB10ms..5s\\fR); a single duration\n"
	      "means LO = HI.\n"
	      ".TP\n"
	      ".I COUNT/DURATION\n"
	      "A rate (\\fB10/60s\\fR): COUNT at least 1, DURATION greater than 0 and finite.\n"
	      ".TP\n"
	      ".I size\n"
	      "Bytes, or a number with\n"
	      ".BR K ,\n"
	      ".BR M ,\n"
	      ".B G\n"
	      "or\n"
	      ".B T\n"
	      "(base 1024; fractions allowed: \\fB1.5G\\fR), or\n"
	      ".BR infinity .\n"
	      ".TP\n"
	      ".I enum\n"
	      "One of the listed words, exactly.\n"
	      ".TP\n"
	      ".IR string \", \" path\n"
	      "As written; no control characters except tab.\n"
	      "A path is absolute.\n"
	      ".TP\n"
	      ".IR directory \", \" glob\n"
	      "A directory, or a\n"
	      ".BR glob (7)\n"
	      "pattern for files\n"
	      "(\\fB*\\fR, \\fB?\\fR, \\fB[...]\\fR, and \\fB{a,b}\\fR alternatives).\n"
	      "A relative one is relative to the directory of the config file, not to the\n"
	      "current directory;\n"
	      ".B check\\-config\n"
	      "prints it absolute.\n"
	      ".PP\n"
	      ".B check\\-config\n"
	      "prints durations and sizes in their shortest exact form: 1500000us is 1.5s, 60s is\n"
	      "1min, 1536 bytes is 1.5K.\n",
	      f);
}

static void print_sections(FILE *f)
{
	fputs(".SH \"THE [supervisor] SECTION\"\n"
	      "How the daemon itself behaves.\n"
	      "At most one; every key has a default, so the section may be left out.\n",
	      f);
	print_keys(CONFIG_SECTION_SUPERVISOR, f);

	fputs(".SH \"[pool NAME] SECTIONS\"\n"
	      "A pool is a named group of identical worker processes\n"
	      "(\\fBbulkhead\\-worker\\fR), each running a pool of job threads.\n"
	      "If the file has no\n"
	      ".BI \"[pool \" NAME ]\n"
	      "section at all, there is one implicit pool\n"
	      ".B main\n"
	      "with every default.\n"
	      "As soon as one\n"
	      ".BI \"[pool \" NAME ]\n"
	      "section exists there is no implicit pool: jobs must name existing pools, and the\n"
	      "default\n"
	      ".B pool = main\n"
	      "then needs a\n"
	      ".BR \"[pool main]\" .\n",
	      f);
	print_keys(CONFIG_SECTION_POOL, f);

	fputs(".SH \"[job NAME] SECTIONS\"\n"
	      "A job group:\n"
	      ".B count\n"
	      "instances named\n"
	      ".IB NAME #1\n"
	      "\\&..\n"
	      ".IB NAME # COUNT\\fR,\n"
	      "or one job per file: per file matching\n"
	      ".B inputs\n"
	      "(in sorted order, so\n"
	      ".IB NAME #1\n"
	      "is the first file), or per file that appears in the\n"
	      ".B spool\n"
	      "directory.\n"
	      "A job made from a file has the file's absolute path as its argument\n"
	      ".BR input ,\n"
	      "and reports name failed and quarantined jobs by that path.\n"
	      ".BR bulkheadd (8)\n"
	      "runs them when it starts, then waits for more work.\n"
	      ".B bulkhead run\n"
	      "runs them until every one has ended, and exits 0 when every group reached its\n"
	      ".BR expect .\n",
	      f);
	print_keys(CONFIG_SECTION_JOB, f);
}

static void print_run_kinds(FILE *f)
{
	fputs(".SH \"RUN KINDS\"\n"
	      "What\n"
	      ".B run\n"
	      "can say.\n"
	      ".TP\n"
	      ".BI builtin: NAME\n"
	      "A job compiled into the worker: see BUILTIN JOBS below.\n"
	      ".TP\n"
	      ".BI plugin: PATH : SYMBOL\n"
	      "The function\n"
	      ".I SYMBOL\n"
	      "(a C identifier) of the shared object\n"
	      ".IR PATH ,\n"
	      "built against\n"
	      ".BR bulkhead\\-job (3).\n"
	      "A relative\n"
	      ".I PATH\n"
	      "is relative to the directory of the config file;\n"
	      ".B check\\-config\n"
	      "prints it absolute.\n"
	      "Each worker of the pool loads the plugin once with\n"
	      ".BR dlopen (3);\n"
	      "the master never does.\n"
	      "Before anything is spawned, every plugin of the config is loaded in a throwaway\n"
	      "worker: a file that cannot be loaded, a missing\n"
	      ".IR SYMBOL ,\n"
	      "a plugin built for another ABI and a constructor that crashes are config errors\n"
	      "with the\n"
	      ".BR dlerror (3)\n"
	      "text.\n"
	      ".B args\n"
	      "are free\n"
	      ".IB KEY = VALUE\n"
	      "words that the plugin reads with\n"
	      ".BR bulkhead_job_arg ().\n"
	      ".TP\n"
	      ".BI exec: \"COMMAND ARGS...\"\n"
	      "A command, started for each job from a worker thread with\n"
	      ".BR posix_spawn (3)\n"
	      "in a process group of its own.\n"
	      "The words are split like a shell's, without any expansion: blanks separate them,\n"
	      ".B \\(aq...\\(aq\n"
	      "quotes anything,\n"
	      ".B \\(dq...\\(dq\n"
	      "quotes with backslash escapes for \\(dq \\e $ and \\(ga, and a backslash outside\n"
	      "quotes makes the next character literal.\n"
	      "In every argument,\n"
	      ".B {input}\n"
	      "is the job's file,\n"
	      ".B {id}\n"
	      "its id,\n"
	      ".B {name}\n"
	      "the group's name and\n"
	      ".BI {arg: KEY }\n"
	      "the value of\n"
	      ".I KEY\n"
	      "in\n"
	      ".BR args ;\n"
	      ".B {{\n"
	      "and\n"
	      ".B }}\n"
	      "are literal braces.\n"
	      "A placeholder that can have no value\n"
	      "(\\fB{input}\\fR without\n"
	      ".B inputs\n"
	      "or\n"
	      ".BR spool ,\n"
	      "a\n"
	      ".I KEY\n"
	      "not in\n"
	      ".BR args )\n"
	      "is a config error.\n"
	      ".I COMMAND\n"
	      "is an absolute path or a name looked up in PATH, checked when the config is\n"
	      "loaded (so it may not contain placeholders).\n"
	      "The command gets the worker's environment plus\n"
	      ".B BULKHEAD_JOB_ID\n"
	      "(and\n"
	      ".B BULKHEAD_JOB_INPUT\n"
	      "for a job made from a file), and /dev/null as standard input.\n"
	      "Its standard output and error go to the log (the first 16 KiB of each job, then a\n"
	      "line saying how much was dropped), or with\n"
	      ".B output\n"
	      "to files.\n"
	      "Exit status 0 is done, any other is failed; a command killed by a signal is blamed\n"
	      "like a crash (the worker lives on); on a timeout its whole process group is killed.\n",
	      f);
}

static void print_builtins(FILE *f)
{
	fputs(".SH \"BUILTIN JOBS\"\n"
	      "Jobs compiled into the worker, for\n"
	      ".BI run \" = builtin:\" NAME\\fR.\n"
	      "Their arguments go into\n"
	      ".B args\n"
	      "as\n"
	      ".IB key = value\n"
	      "words separated by whitespace.\n"
	      "Each key must be one the builtin takes (an unknown key gets a \"did you mean\"),\n"
	      "given once, with a value of its type:\n"
	      ".B uint\n"
	      "a decimal integer,\n"
	      ".B size\n"
	      "a size,\n"
	      ".B bool\n"
	      "yes/no/true/false/on/off/1/0,\n"
	      ".B prob\n"
	      "a probability 0..1.\n"
	      "Every argument is optional.\n"
	      ".PP\n"
	      "Every builtin also takes the common argument\n"
	      ".IR crash = prob :\n"
	      "before its own work, the job raises a real SIGSEGV if a hash of its job id\n"
	      "(splitmix64 of the id, as a fraction of 2^64) is below\n"
	      ".BR crash .\n"
	      "The choice depends on the id alone, so the same jobs crash on every attempt\n"
	      "(a poison input: they end\n"
	      ".B crashed\n"
	      "after\n"
	      ".BR max_attempts ),\n"
	      "which is what\n"
	      ".B bulkhead experiment\n"
	      "uses to crash the same jobs in every mode.\n"
	      "Without it (or with 0) nothing changes.\n",
	      f);
	for (int i = 0; i < _BH_BUILTIN_MAX; i++)
		print_builtin((enum bh_builtin)i, f);
}

static void print_limits(FILE *f)
{
	fprintf(f,
		".SH LIMITS\n"
		"At most:\n"
		".PP\n"
		".RS\n"
		".nf\n"
		"%d pools\n"
		"%d job sections\n"
		"%d jobs in all (the sum of every count)\n"
		"%d bytes in a line\n"
		"%d errors reported, then a line that says how many more there were\n"
		".fi\n"
		".RE\n",
		CONFIG_POOLS_MAX, CONFIG_GROUPS_MAX, CONFIG_JOBS_MAX, CONFIG_LINE_MAX,
		CONFIG_ERRORS_MAX);
}

static void print_errors(FILE *f)
{
	fputs(".SH DIAGNOSTICS\n"
	      "Every error is one line that names the file (as given), the line and, where there\n"
	      "is one, the section and the key:\n"
	      ".PP\n"
	      ".RS\n"
	      ".nf\n"
	      "demo.conf:12: [pool main] threads = abc: expected an integer 1..256\n"
	      "demo.conf:9: [pool main] duplicate key \\(aqthreads\\(aq (first set on line 7)\n"
	      "demo.conf:20: [job x] pool = mian: no such pool (did you mean \\(aqmain\\(aq?)\n"
	      "demo.conf:4: unknown section [jbo x] (did you mean \\(aqjob\\(aq?)\n"
	      "demo.conf: cannot open: No such file or directory\n"
	      ".fi\n"
	      ".RE\n"
	      ".PP\n"
	      "The parser does not stop at the first error: it reports every error it finds, sorted\n"
	      "by line, and accepts the file only if there is none.\n"
	      "Errors about the file as a whole (cannot open, cannot read, no\n"
	      ".B [pool]\n"
	      "and no\n"
	      ".B [job]\n"
	      "section) have no line; an error about a key that was not set names the line of\n"
	      "its section header.\n",
	      f);
}

static void print_tail(const char *sysconfdir, FILE *f)
{
	fprintf(f,
		".SH \"EXIT STATUS\"\n"
		"Of\n"
		".B bulkhead check\\-config\n"
		".IR FILE :\n"
		".TP\n"
		".B 0\n"
		"FILE is valid; the effective config is on standard output, in a form that loads\n"
		"back to an equal config.\n"
		".TP\n"
		".B 78\n"
		"Config error, including a missing or unreadable FILE; the errors are on standard\n"
		"error, one per line, each starting with\n"
		".IR FILE: .\n"
		".TP\n"
		".B 2\n"
		"Usage error: no FILE, more than one, an unknown option.\n"
		".TP\n"
		".B 1\n"
		"Out of memory, or standard output cannot be written.\n"
		".PP\n"
		".B bulkheadd \\-\\-check\n"
		"exits the same way.\n"
		".SH FILES\n"
		".TP\n"
		".I %s/bulkhead/bulkhead.conf\n"
		"The config of\n"
		".BR bulkheadd (8).\n"
		".SH EXAMPLE\n"
		".nf\n"
		"[supervisor]\n"
		"log_level = info\n"
		"drain_timeout = 10s\n"
		"\n"
		"[pool main]                 # a named group of identical worker processes\n"
		"workers = 3                 # processes\n"
		"threads = 4                 # job threads in each\n"
		"backoff = 10ms..5s          # restart delay after a worker fault\n"
		"max_worker_faults = 10/60s  # more than this: the pool fails\n"
		"memory_max = 512M           # per worker\n"
		"\n"
		"[job ledger]                # jobs ledger#1 .. ledger#100\n"
		"pool = main\n"
		"run = builtin:balance\n"
		"args = iterations=100000 amount=5\n"
		"count = 100\n"
		"timeout = 30s               # per attempt\n"
		"max_attempts = 3            # attempts blamed on the job itself\n"
		"expect = done\n"
		"\n"
		"[job verify]                # one job per file, a plugin\n"
		"run = plugin:/usr/local/lib/bulkhead/archive\\-verify.so:archive_verify\n"
		"inputs = /var/cache/apt/archives/*.deb\n"
		"timeout = 5min\n"
		"\n"
		"[job incoming]              # files dropped into a directory, a command\n"
		"run = exec:gzip \\-t {input}\n"
		"spool = /srv/incoming       # then done/, failed/ or quarantine/\n"
		"output = /srv/logs          # incoming.ID.out and .err\n"
		".fi\n"
		".SH \"SEE ALSO\"\n"
		".BR bulkhead (1),\n"
		".BR bulkheadd (8),\n"
		".BR bulkhead\\-job (3)\n",
		sysconfdir);
}

int main(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] != '/') {
		fputs("Usage: gen-conf-man SYSCONFDIR > bulkhead.conf.5\n", stderr);
		return 2;
	}
	print_head(argv[1], stdout);
	print_format(stdout);
	print_types(stdout);
	print_sections(stdout);
	print_run_kinds(stdout);
	print_builtins(stdout);
	print_limits(stdout);
	print_errors(stdout);
	print_tail(argv[1], stdout);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("gen-conf-man: stdout");
		return 1;
	}
	return builtin_docs_bad ? 1 : 0;
}
