/* Input records for the pipeline stages: posts from a CSV or JSONL file, each with its text,
 * every source field (kept so later stages and annotate-eval can read labels), the line it
 * starts on, and a stable id — 16 hex digits of a hash of the text — so that the same post
 * gets the same id in every run and in every stage, and exact duplicates are recognised.
 *
 * Bad records do not stop a run: a malformed CSV row (broken quoting, wrong field count), a
 * JSONL line that is not an object, a missing or empty text field, invalid UTF-8 — each is
 * skipped, counted and described by a message naming the file and line. Only problems with
 * the file as a whole (unreadable, empty, no such column) are errors. */
#ifndef PT_DATA_RECORDS_H
#define PT_DATA_RECORDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/status.h"

typedef enum { PT_FMT_AUTO = 0, PT_FMT_CSV, PT_FMT_JSONL } pt_data_format;

typedef struct {
    char id[17];
    char *text;      /* owned */
    json_t *fields;  /* the source record: CSV columns as strings, or the JSONL object */
    int line;        /* 1-based line where the record starts */
} pt_record;

typedef struct {
    char *label;     /* the file the records came from (for messages) */
    pt_record *rec;
    int n, cap;
    long n_read;     /* records read, good or bad */
    long n_bad;      /* skipped as malformed */
    long n_dup;      /* exact duplicates (same id) dropped */
    char **issues;   /* one message per bad or duplicate record (the first PT_MAX_ISSUES) */
    int n_issues;
} pt_recordset;

#define PT_MAX_ISSUES 10000

typedef struct {
    const char *text_field;  /* required */
    pt_data_format format;   /* AUTO: by extension (.csv .tsv -> CSV, else JSONL), else by content */
    char delim;              /* CSV delimiter; 0: detected from the header line */
    long limit;              /* keep at most this many records (0: all) */
    bool keep_dups;          /* keep exact duplicates instead of dropping them */
} pt_read_opts;

pt_status pt_records_load(pt_recordset *rs, const char *path, const pt_read_opts *o);
/* The same from a buffer; `label` names it in messages (the fuzz target's entry point). */
pt_status pt_records_parse(pt_recordset *rs, const char *text, size_t len, const char *label, const pt_read_opts *o);
void pt_records_free(pt_recordset *rs);

/* Appends a record built by the caller (judge-answers reads its own formats): id NULL means
 * the hash of the text; `fields` is taken. No duplicate check. */
pt_status pt_records_append(pt_recordset *rs, const char *id, const char *text, json_t *fields, int line);
/* Adds a message to rs->issues. */
void pt_records_note(pt_recordset *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A field of a record by name; "a.b" looks into nested objects. NULL if absent. */
json_t *pt_record_get(json_t *fields, const char *name);

#endif
