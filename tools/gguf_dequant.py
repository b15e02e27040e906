#!/usr/bin/env python3
"""Rewrite a GGUF file with its quantised tensors dequantised to F32 (or F16) by the gguf
package's reference dequantisers, every metadata key copied verbatim.

An oracle helper for tests and experiments: it gives politune and llama.cpp the same weights
in a type both read exactly, so a comparison isolates the forward pass from the dot kernels.
Types listed with --keep stay as they are (e.g. --keep Q8_0).

usage: gguf_dequant.py IN.gguf OUT.gguf [--type f32|f16] [--keep TYPE ...]
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--type", choices=["f32", "f16"], default="f32")
    ap.add_argument("--keep", nargs="*", default=[])
    a = ap.parse_args()
    keep = {T[k.upper()] for k in a.keep}
    r = gguf.GGUFReader(a.src)
    arch = r.fields["general.architecture"].contents()
    tmp = a.dst + ".part"
    w = gguf.GGUFWriter(tmp, arch)
    for name, f in r.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vt = f.types[0]
        if vt == gguf.GGUFValueType.ARRAY:
            w.add_key_value(name, f.contents(), vt, sub_type=f.types[-1])
        else:
            w.add_key_value(name, f.contents(), vt)
    out_t = T.F32 if a.type == "f32" else T.F16
    for t in r.tensors:
        shape = [int(x) for x in reversed(t.shape)]  # numpy order (rows, cols)
        if t.tensor_type in (T.F32, T.F16) or t.tensor_type in keep:
            data = np.asarray(t.data)
            raw = t.tensor_type not in (T.F32, T.F16)
            w.add_tensor(t.name, data, raw_shape=data.shape if not raw else None, raw_dtype=t.tensor_type if raw else None)
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
        x = x.astype(np.float32 if out_t == T.F32 else np.float16)
        w.add_tensor(t.name, x)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, a.dst)


if __name__ == "__main__":
    sys.exit(main())
