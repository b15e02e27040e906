/* JSON Lines: reading one object per line with line numbers, and the resumable output every
 * pipeline stage writes.
 *
 * Output is appended one whole line at a time (a single write of the record and its newline,
 * flushed), so an interrupted run leaves at most one partial line at the end. Opening an
 * existing output to resume drops that partial line and collects the key of every complete
 * record, so the stage can skip what is done; the rest of the run appends, and the file ends
 * up byte-identical to an uninterrupted run's. */
#ifndef PT_DATA_JSONL_H
#define PT_DATA_JSONL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "data/idset.h"
#include "util/status.h"

typedef struct {
    const char *text;
    size_t len, pos;
    int line;          /* line of text[pos] (1-based) */
    const char *label;
} pt_jsonl_reader;

void pt_jsonl_reader_init(pt_jsonl_reader *r, const char *text, size_t len, const char *label);
/* The next non-blank line as a JSON object (a new reference). *got is false at the end. A
 * line that is not a JSON object (or not valid UTF-8) is PT_ERR_FORMAT naming label:line,
 * and the reader has moved past it. */
pt_status pt_jsonl_next(pt_jsonl_reader *r, json_t **obj, int *line, bool *got);

/* Reads a whole JSONL file into an array of its records, in order. A malformed line is an
 * error naming the file and line. */
pt_status pt_jsonl_read_all(const char *path, json_t **records);
/* The same as an object from each record's string field `key` to the record (later lines
 * win; records without the key are left out). */
pt_status pt_jsonl_index(const char *path, const char *key, json_t **by_key);

typedef struct {
    FILE *f;
    char *path;
    pt_idset done;          /* key values of the complete records already in the file */
    long n_existing;        /* complete records found when opening */
    long dropped_partial;   /* bytes of an unfinished last line removed when opening */
} pt_jsonl_out;

/* Opens `path` for appending. With restart, or when the file does not exist, starts empty;
 * otherwise resumes: drops a partial last line and reads the string field `key` of every
 * record into o->done (a line that is not such a record is an error naming path:line). */
pt_status pt_jsonl_out_open(pt_jsonl_out *o, const char *path, const char *key, bool restart);
/* Appends rec as one compact line and flushes it. */
pt_status pt_jsonl_out_write(pt_jsonl_out *o, const json_t *rec);
/* Flushes and fsyncs (call at checkpoints); close does it too. */
pt_status pt_jsonl_out_sync(pt_jsonl_out *o);
pt_status pt_jsonl_out_close(pt_jsonl_out *o);

/* The compact one-line serialisation every stage writes (keys in insertion order). */
char *pt_jsonl_dump(const json_t *rec);

#endif
