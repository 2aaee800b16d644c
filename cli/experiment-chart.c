/* SPDX-License-Identifier: MIT */
/*
 * The chart of `bulkhead experiment --svg FILE`: a self-contained SVG (no script, no external
 * font or style) meant for a slide. Two panels, one above the other so that the mode names
 * fit under the bars: throughput (jobs/s per mode, with the crash-free threads baseline as a
 * dashed line behind the bars, named in a legend above the plot, where no bar can hide it) and
 * jobs lost per mode (in a colour of its own). A title says the workload, a subtitle the
 * machine and what the ratio means; each bar carries its value (and ratio), inside its top
 * when it is tall enough, else above it. A mode whose process died (`threads` at its first
 * crash) has no throughput bar: its jobs/s over the few jobs it ran before dying would look
 * fast; it is marked "died" with the jobs it completed of the workload.
 *
 * Every piece of text that comes from the command line (the workload, the args) is XML-escaped.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/experiment.h"

#define CHART_W 960
#define CHART_LEFT 96 /* room for the y tick labels and axis title */
#define CHART_RIGHT 32
#define CHART_TICKS 5
#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"
#define COLOR_JOBS "#4e79a7"
#define COLOR_LOST "#e15759"
#define COLOR_AXIS "#333333"
#define COLOR_GRID "#dddddd"
#define COLOR_MUTED "#666666"
#define LABEL_INSIDE_MIN 40 /* px: a bar this tall carries its value inside */
#define LEGEND_CHAR_W 6.6 /* px: a generous width of one character at font-size 12 */

struct panel {
	const char *title;
	const char *axis; /* the y axis title */
	const char *color;
	double top, height; /* the plot area */
	double max; /* the top of the y axis */
	double step; /* between ticks */
};

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			/* Control characters are not allowed in XML 1.0 text. */
			if ((unsigned char)*s >= 0x20 || *s == '\t' || *s == '\n')
				fputc(*s, f);
		}
	}
}

/* 1234567 as "1,234,567" (rounded to an integer). */
static char *format_count(char *buf, size_t size, double v)
{
	char digits[32];
	size_t n, o = 0;

	snprintf(digits, sizeof(digits), "%.0f", v < 0 ? 0 : v);
	n = strlen(digits);
	for (size_t i = 0; i < n && o + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
	return buf;
}

/* A round tick step (1, 2 or 5 times a power of ten) giving about CHART_TICKS ticks. */
static void axis_scale(double max, bool integer, double *ret_max, double *ret_step)
{
	double raw, mag = 1, step;

	if (!(max > 0))
		max = 1;
	raw = max / CHART_TICKS;
	while (mag * 10 <= raw)
		mag *= 10;
	while (mag > raw)
		mag /= 10;
	step = raw <= mag ? mag : raw <= 2 * mag ? 2 * mag : raw <= 5 * mag ? 5 * mag : 10 * mag;
	if (integer && step < 1)
		step = 1;
	*ret_step = step;
	*ret_max = step;
	while (*ret_max < max)
		*ret_max += step;
}

static double y_of(const struct panel *p, double v)
{
	return p->top + p->height - (v / p->max) * p->height;
}

static void panel_frame(FILE *f, const struct panel *p)
{
	double plot_w = CHART_W - CHART_LEFT - CHART_RIGHT;
	char label[32];

	fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", CHART_LEFT,
		p->top - 14);
	xml_text(f, p->title);
	fputs("</text>\n", f);
	for (double v = 0; v <= p->max + p->step / 2; v += p->step) {
		double y = y_of(p, v);

		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n"
			"<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
			"fill=\"%s\">%s</text>\n",
			CHART_LEFT, y, CHART_LEFT + plot_w, y, v == 0 ? COLOR_AXIS : COLOR_GRID,
			CHART_LEFT - 8, y + 4, COLOR_MUTED, format_count(label, sizeof(label), v));
	}
	fprintf(f,
		"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\"/>\n"
		"<text transform=\"translate(%d %.1f) rotate(-90)\" font-size=\"13\" "
		"text-anchor=\"middle\" fill=\"%s\">",
		CHART_LEFT, p->top, CHART_LEFT, p->top + p->height, COLOR_AXIS, 24,
		p->top + p->height / 2, COLOR_AXIS);
	xml_text(f, p->axis);
	fputs("</text>\n", f);
}

/*
 * Where a mode that died would have its throughput bar: no bar, "died (SIGSEGV)" and
 * "557 of 20,000 jobs" on the axis, a cross on it.
 */
static void bar_died(FILE *f, const struct panel *p, const struct experiment_row *r,
		     uint64_t jobs, double cx)
{
	double base = p->top + p->height;
	char done[32], all[32];

	fprintf(f,
		"<path d=\"M%.1f %.1f l12 -12 M%.1f %.1f l-12 -12\" stroke=\"%s\" "
		"stroke-width=\"3\"/>\n",
		cx - 6, base - 2, cx + 6, base - 2, COLOR_LOST);
	fprintf(f,
		"<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
		"font-weight=\"bold\" fill=\"%s\"><title>",
		cx, base - 40, COLOR_LOST);
	xml_text(f, experiment_mode_name(r->mode));
	fprintf(f, ": the process died (");
	xml_text(f, r->ended_by);
	fprintf(f, ") after %s of %s jobs; the rest were lost</title>died (",
		format_count(done, sizeof(done), (double)r->completed),
		format_count(all, sizeof(all), (double)jobs));
	xml_text(f, r->ended_by);
	fprintf(f,
		")</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
		"text-anchor=\"middle\" fill=\"%s\">%s of %s jobs</text>\n",
		cx, base - 22, COLOR_MUTED, done, all);
}

/* The bars of one panel (jobs/s and ratio, or jobs lost), each with its value. */
static void panel_bars(FILE *f, const struct panel *p, const struct experiment_chart *c, bool lost)
{
	double plot_w = CHART_W - CHART_LEFT - CHART_RIGHT;
	double slot = plot_w / (c->n_rows ? c->n_rows : 1);
	double bar_w = slot * 0.6 > 120 ? 120 : slot * 0.6;

	for (unsigned i = 0; i < c->n_rows; i++) {
		const struct experiment_row *r = &c->rows[i];
		double v = lost ? (double)r->lost : r->jobs_per_s;
		double x = CHART_LEFT + slot * i + (slot - bar_w) / 2, y = y_of(p, v);
		char num[32], shape[32];

		if (!lost && r->ended_by[0]) {
			bar_died(f, p, r, c->jobs, x + bar_w / 2);
			goto mode_name;
		}
		fprintf(f,
			"<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			"<title>",
			x, y, bar_w, p->top + p->height - y, p->color);
		xml_text(f, experiment_mode_name(r->mode));
		fprintf(f, ": %s %s</title></rect>\n", format_count(num, sizeof(num), v),
			lost ? "jobs lost" : "jobs/s");
		format_count(num, sizeof(num), v);
		if (p->top + p->height - y >= LABEL_INSIDE_MIN) {
			/* Inside the top of the bar, white on its colour: no line crosses it. */
			fprintf(f,
				"<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" "
				"text-anchor=\"middle\" font-weight=\"bold\" fill=\"#ffffff\">%s",
				x + bar_w / 2, y + 18, num);
			if (!lost)
				fprintf(f,
					"<tspan x=\"%.1f\" dy=\"16\" font-weight=\"normal\">×%.2f"
					"</tspan>",
					x + bar_w / 2, r->ratio);
		} else {
			fprintf(f,
				"<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" "
				"text-anchor=\"middle\" font-weight=\"bold\">%s",
				x + bar_w / 2, y - 6, num);
			if (!lost)
				fprintf(f,
					" <tspan font-weight=\"normal\" fill=\"%s\">×%.2f</tspan>",
					COLOR_MUTED, r->ratio);
		}
		fputs("</text>\n", f);
mode_name:
		/* The mode under its bar, and its shape (workers × threads). */
		snprintf(shape, sizeof(shape), "%u × %u", r->workers, r->threads);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">",
			x + bar_w / 2, p->top + p->height + 18);
		xml_text(f, experiment_mode_name(r->mode));
		fprintf(f,
			"</text>\n<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
			"text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
			x + bar_w / 2, p->top + p->height + 33, COLOR_MUTED, shape);
	}
}

int experiment_chart_svg(FILE *f, const struct experiment_chart *c)
{
	struct panel jobs = { .title = "Throughput: completed jobs per second (higher is better)",
			      .axis = "jobs/s",
			      .color = COLOR_JOBS,
			      .top = 110,
			      .height = 240 };
	struct panel lost = { .title = "Jobs lost (lower is better)",
			      .axis = "jobs lost",
			      .color = COLOR_LOST,
			      .top = 450,
			      .height = 170 };
	double max_jobs = c->baseline_jobs_per_s, max_lost = 0, y;
	int height = 700;

	for (unsigned i = 0; i < c->n_rows; i++) {
		if (!c->rows[i].ended_by[0] && c->rows[i].jobs_per_s > max_jobs)
			max_jobs = c->rows[i].jobs_per_s;
		if ((double)c->rows[i].lost > max_lost)
			max_lost = (double)c->rows[i].lost;
	}
	/* Room above the tallest bar for its label. */
	axis_scale(max_jobs * 1.08, false, &jobs.max, &jobs.step);
	axis_scale(max_lost * 1.08, true, &lost.max, &lost.step);

	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"%s\" fill=\"%s\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n"
		"<text x=\"%d\" y=\"34\" font-size=\"20\" font-weight=\"bold\">bulkhead "
		"experiment: ",
		CHART_W, height, CHART_W, height, FONT, COLOR_AXIS, CHART_LEFT - 72);
	xml_text(f, c->title);
	fprintf(f, "</text>\n<text x=\"%d\" y=\"58\" font-size=\"13\" fill=\"%s\">",
		CHART_LEFT - 72, COLOR_MUTED);
	xml_text(f, c->subtitle);
	fputs("</text>\n", f);

	panel_frame(f, &jobs);
	/*
	 * The baseline first: the bars and their labels go over its line. Its label is a legend
	 * on the panel's title row, right-aligned, where no bar reaches.
	 */
	if (c->baseline_jobs_per_s > 0) {
		char num[32], label[64];
		double x_text = CHART_W - CHART_RIGHT, y_text = jobs.top - 14;
		double x_key;

		y = y_of(&jobs, c->baseline_jobs_per_s);
		snprintf(label, sizeof(label), "crash-free threads: %s jobs/s",
			 format_count(num, sizeof(num), c->baseline_jobs_per_s));
		x_key = x_text - (double)strlen(label) * LEGEND_CHAR_W - 34;
		fprintf(f,
			"<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" "
			"stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
			"stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\" "
			"fill=\"%s\">%s</text>\n",
			CHART_LEFT, y, CHART_W - CHART_RIGHT, y, COLOR_AXIS, x_key, y_text - 4,
			x_key + 26, y_text - 4, COLOR_AXIS, x_text, y_text, COLOR_AXIS, label);
	}
	panel_bars(f, &jobs, c, false);
	panel_frame(f, &lost);
	panel_bars(f, &lost, c, true);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" fill=\"%s\">mode "
		"(workers × threads)</text>\n</svg>\n",
		CHART_LEFT + (CHART_W - CHART_LEFT - CHART_RIGHT) / 2, height - 16, COLOR_AXIS);
	fflush(f);
	return ferror(f) ? -EIO : 0;
}
