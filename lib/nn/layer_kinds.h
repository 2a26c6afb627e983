/* layer_kinds.h: the list of layer kinds, one LAYER_KIND(KIND) line each, naming the
 * `const layer_ops_t layer_KIND_ops` that lib/nn/layer_*.c defines (its keyword, grammar and
 * passes). A new kind is its ops in its own file and one line here; layer.h declares the ops
 * and layer.c builds the table of kinds from this list, in this order.
 *
 * An X-macro list: no include guard; the includer defines LAYER_KIND(kind) first and
 * undefines it after. */
LAYER_KIND(linear)
LAYER_KIND(relu)
LAYER_KIND(lrelu)
LAYER_KIND(tanh)
LAYER_KIND(sigmoid)
LAYER_KIND(reshape)
LAYER_KIND(flatten)
LAYER_KIND(bn)
LAYER_KIND(ln)
LAYER_KIND(in)
LAYER_KIND(dropout)
LAYER_KIND(noise)
LAYER_KIND(conv)
LAYER_KIND(convT)
LAYER_KIND(maxpool)
LAYER_KIND(avgpool)
LAYER_KIND(upsample)
LAYER_KIND(embed)
LAYER_KIND(onehot)
LAYER_KIND(cbn)
LAYER_KIND(proj)
LAYER_KIND(sumpool)
