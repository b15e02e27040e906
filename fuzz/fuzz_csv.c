/* libFuzzer target for the corpora users feed the data stages: arbitrary bytes go to the
 * record reader as CSV (delimiter detected) and as JSONL, and to the bare CSV reader; every
 * record that survives must have valid UTF-8 text and a 16-digit id, without crashes, leaks or
 * reads out of bounds.
 * (sources beyond util/format/tokenizer on the next line) */
// fuzz-sources: src/data/records.c src/data/jsonl.c src/data/idset.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/csv.h"
#include "data/records.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    for (int fmt = PT_FMT_CSV; fmt <= PT_FMT_JSONL; fmt++) {
        pt_read_opts o = {.text_field = "text", .format = (pt_data_format)fmt};
        pt_recordset rs;
        if (pt_records_parse(&rs, text, size, "fuzz", &o) != PT_OK) continue;
        for (int i = 0; i < rs.n; i++)
            if (strlen(rs.rec[i].id) != 16 || pt_utf8_invalid_at(rs.rec[i].text, strlen(rs.rec[i].text)) >= 0) abort();
        pt_records_free(&rs);
    }
    pt_csv_reader r;
    if (pt_csv_reader_init(&r, text, size, 0, "fuzz") == PT_OK) {
        char **f;
        int n, line, guard = 0;
        bool got = true;
        while (got && guard++ < 100000) {
            pt_status st = pt_csv_reader_next(&r, &f, &n, &line, &got);
            if (st == PT_ERR_OOM) break;
            if (st) got = true;
            if (r.pos > r.len) abort();
            if (st == PT_OK && !got) break;
        }
        pt_csv_reader_free(&r);
    }
    return 0;
}
