/* test_layer_class.c: the class-conditional layers (lib/nn/layer_class.c: embed, onehot, cbn,
 * proj) on the CPU backend: finite differences of backward and of the gradient penalty's
 * tangent passes with labels, each sample's output depending on its own class only, the spec
 * text, the checkpoint names and shapes, and the model's checks of K. PyTorch float64 parity
 * is tests/ref/test_layers_class.py; the CUDA kernels' parity is test_backend_parity.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "net_check.h"

#include "lib/gan/model.h"
#include "lib/gan/trainer.h"

static const int64_t LAB[8] = {2, 0, 1, 2, 2, 0, 1, 1};

/* (tanh rather than lrelu after the convolutions: a pre-activation within h of lrelu's kink
 * spoils a central difference; tests/ref/test_layers_class.py checks lrelu there) */
static void test_finite_differences(void) {
    fd_labels = LAB;
    fd_check("embed 3 4; linear 5; tanh; linear 2", (shape3_t){2, 1, 1}, 6);
    fd_check("embed 3 2; conv 2 k3 p1", (shape3_t){1, 3, 3}, 5);
    fd_check("onehot 3; conv 2 k3 p1", (shape3_t){2, 4, 4}, 6);
    fd_check("conv 2 k3 p1; flatten; proj 3", (shape3_t){2, 4, 4}, 6);
    fd_check("onehot 3; conv 2 k3 p1; tanh; flatten; proj 3", (shape3_t){2, 4, 4}, 6);
    fd_check("flatten; proj 3 nobias", (shape3_t){3, 2, 2}, 7);
    fd_check("linear 6; lrelu 0.2; proj 3", (shape3_t){4, 1, 1}, 8);
    fd_check("linear 5; cbn 3; lrelu 0.2; linear 2", (shape3_t){4, 1, 1}, 8);
    fd_check("cbn 3 eps=0.01; conv 2 k3 p1", (shape3_t){2, 3, 3}, 6);
    /* thread counts do not change a bit */
    CHECK(same_runs("embed 3 5; conv 8 k3 p1; lrelu 0.2; conv 6 k3 p1; onehot 3; flatten; proj 3",
                    (shape3_t){4, 16, 16}, 8, 1, 2),
          "1 and 2 threads differ");
    fd_labels = NULL;
}

/* y_b depends on label_b only: change one sample's class, only its output changes */
static void test_own_class(void) {
    const char *specs[] = {"embed 4 3; linear 2", "onehot 4; linear 2", "linear 3; cbn 4; linear 2", "proj 4"};
    for (int s = 0; s < 4; s++) {
        net_t n;
        CHECK(net_build(&n, specs[s], (shape3_t){3, 1, 1}, be) == 0, "%s", gt_errmsg());
        net_alloc(&n, 4);
        net_init(&n, INIT_DCGAN, 3);
        float x[12];
        randn(x, 12, 11, 1.0f);
        int64_t lab[4] = {0, 1, 2, 3};
        nn_ctx_t ctx = net_ctx(&n, 0, 1, 0, 0); /* eval: cbn's statistics do not mix the samples */
        ctx.labels = lab;
        float y0[8], y1[8];
        int o = (int)shape3_size(n.out), ok = 1;
        memcpy(y0, net_forward(&n, &ctx, x, 4), sizeof(float) * 4 * (size_t)o);
        lab[2] = 1;
        memcpy(y1, net_forward(&n, &ctx, x, 4), sizeof(float) * 4 * (size_t)o);
        for (int b = 0; b < 4; b++)
            for (int j = 0; j < o; j++) ok &= (b == 2) == (y0[b * o + j] != y1[b * o + j]);
        CHECK(ok, "%s: only sample 2's output changes with its class", specs[s]);
        lab[2] = 1;
        lab[1] = 1;
        memcpy(y0, net_forward(&n, &ctx, x, 4), sizeof(float) * 4 * (size_t)o);
        float xs[12];
        memcpy(xs, x, sizeof xs);
        memcpy(xs + 6, x + 3, sizeof(float) * 3);
        memcpy(y1, net_forward(&n, &ctx, xs, 4), sizeof(float) * 4 * (size_t)o);
        CHECK(memcmp(y1 + 2 * o, y0 + o, sizeof(float) * (size_t)o) == 0, "%s: same input and class, same output",
              specs[s]);
        net_free(&n);
    }
}

static void test_spec(void) {
    layer_t *ls;
    int nl;
    CHECK(spec_parse("embed 10 50; cbn 10 eps=0.001; onehot 3; proj 7 nobias", &ls, &nl) == 0, "%s", gt_errmsg());
    char *txt = spec_format(ls, nl);
    CHECK(strcmp(txt, "embed 10 50; cbn 10 eps=0.001 momentum=0.1; onehot 3; proj 7 nobias") == 0, "%s", txt);
    free(txt);
    free(ls);
    struct {
        const char *spec, *msg;
    } bad[] = {
        {"embed 3", "layer 1 (embed): missing the embedding size N"},
        {"proj", "layer 1 (proj): missing the number of classes K"},
        {"cbn 0", "layer 1 (cbn): bad number of classes '0' (want a whole number >= 1)"},
        {"onehot 3 4", "layer 1 (onehot): unexpected argument '4'"},
        {"proj 3 k3", "layer 1 (proj): unknown argument 'k3'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(spec_parse(bad[i].spec, &ls, &nl) == -1, "%s parsed", bad[i].spec);
        CHECK(strcmp(gt_errmsg(), bad[i].msg) == 0, "%s: '%s'", bad[i].spec, gt_errmsg());
    }
    net_t n;
    CHECK(net_build(&n, "proj 3", (shape3_t){2, 3, 3}, be) == -1, "proj on images");
    CHECK(strcmp(gt_errmsg(), "layer 1 (proj): input is 2x3x3, not a feature vector: put flatten before proj") == 0,
          "%s", gt_errmsg());
}

static void test_tensors(void) {
    net_t n;
    CHECK(net_build(&n, "embed 3 4; linear 6; cbn 3; flatten; proj 3", (shape3_t){2, 1, 1}, be) == 0, "%s",
          gt_errmsg());
    net_alloc(&n, 2);
    const char *want[] = {"0.weight 12 3 4", "1.weight 36 6 6", "1.bias 6 6",      "2.weight 18 3 6",
                          "2.bias 18 3 6",   "2.running_mean 6 6", "2.running_var 6 6", "2.num_batches_tracked 1",
                          "4.weight 6 1 6",  "4.bias 1 1",      "4.embed.weight 18 3 6"};
    int nt = net_n_tensors(&n);
    CHECK(nt == 11, "%d tensors", nt);
    size_t params = 0;
    for (int j = 0; j < nt && j < 11; j++) {
        net_tensor_t t;
        net_tensor(&n, j, &t);
        char line[128];
        int k = snprintf(line, sizeof line, "%s %zu", t.name, t.count);
        for (int d = 0; d < t.ndim; d++) k += snprintf(line + k, sizeof line - (size_t)k, " %lld", (long long)t.shape[d]);
        CHECK(strcmp(line, want[j]) == 0, "tensor %d is '%s', expected '%s'", j, line, want[j]);
        if (t.is_param) {
            CHECK(t.data == n.params + params, "%s at offset %td, expected %zu", t.name, t.data - n.params, params);
            params += t.count;
        }
    }
    CHECK(params == n.n_params, "tensors cover %zu of %zu parameters", params, n.n_params);
    net_free(&n);
}

static void test_model_classes(void) {
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    s.batch = 2;
    gan_model_t m;
    shape3_t sh = {1, 2, 2};
    CHECK(model_new(&m, "embed 5 3; linear 4; reshape 1x2x2", "flatten; proj 5", sh, 2, &s, 0, 1, be, 2) == 0, "%s",
          gt_errmsg());
    CHECK(m.classes == 5, "classes %d", m.classes);
    model_free(&m);
    CHECK(model_new(&m, "embed 5 3; linear 4; reshape 1x2x2", "flatten; proj 4", sh, 2, &s, 0, 1, be, 2) == -1,
          "K differs");
    CHECK(strcmp(gt_errmsg(), "G has 5 classes but D has 4") == 0, "%s", gt_errmsg());
    CHECK(model_new(&m, "embed 5 3; linear 4; reshape 1x2x2", "onehot 5; flatten; linear 3; proj 4", sh, 2, &s, 0, 1,
                    be, 2) == -1,
          "K differs inside D");
    CHECK(strcmp(gt_errmsg(), "D: layer 4 (proj) has 4 classes but layer 1 (onehot) has 5") == 0, "%s", gt_errmsg());
    /* WGAN-GP: proj and onehot may be in the critic, cbn may not */
    gan_settings_default(&s, LOSS_WGAN_GP);
    s.batch = 2;
    CHECK(model_new(&m, "embed 5 3; linear 4; reshape 1x2x2", "onehot 5; flatten; linear 3; proj 5", sh, 2, &s, 0, 1,
                    be, 2) == 0,
          "%s", gt_errmsg());
    model_free(&m);
    CHECK(model_new(&m, "embed 5 3; linear 4; reshape 1x2x2", "flatten; linear 3; cbn 5; proj 5", sh, 2, &s, 0, 1, be,
                    2) == -1,
          "cbn in a critic");
    CHECK(strcmp(gt_errmsg(), "D (wgan-gp): layer 3 (cbn) cannot be in a gradient-penalty critic") == 0, "%s",
          gt_errmsg());
}

/* the labels are shuffled with the images: every real batch's classes are its images' */
static void test_trainer_labels(void) {
    gan_settings_t s;
    gan_settings_default(&s, LOSS_NS);
    s.batch = 4;
    gan_model_t m;
    CHECK(model_new(&m, "embed 3 2; linear 4; reshape 1x2x2", "onehot 3; flatten; proj 3", (shape3_t){1, 2, 2}, 2, &s,
                    0, 1, be, 4) == 0,
          "%s", gt_errmsg());
    int64_t n = 22, shape[4] = {22, 1, 2, 2};
    tensor_t data, lab;
    tensor_alloc(&data, DT_U8, 4, shape);
    tensor_alloc(&lab, DT_I64, 1, &n);
    for (int64_t i = 0; i < n; i++) {
        memset((uint8_t *)data.data + 4 * i, (int)(10 * i), 4); /* image i: every pixel 10 i */
        ((int64_t *)lab.data)[i] = (i * 5) % 3;
    }
    trainer_t t;
    CHECK(trainer_init(&t, &m, &data) == 0, "%s", gt_errmsg());
    CHECK(train_step(&t) == -1, "a conditional model without labels trains");
    CHECK(strcmp(gt_errmsg(), "the model is class-conditional (3 classes): give the images' labels (gan-step --labels)") ==
              0,
          "%s", gt_errmsg());
    CHECK(trainer_set_labels(&t, &lab) == 0, "%s", gt_errmsg());
    int seen[22] = {0}, ok = 1;
    for (int step = 0; step < 12; step++) { /* 5 batches an epoch: crosses two epochs */
        CHECK(train_step(&t) == 0, "%s", gt_errmsg());
        for (int b = 0; b < 4; b++) {
            int img = (int)lrintf((t.real[4 * b] * 127.5f + 127.5f) / 10.0f);
            ok &= img >= 0 && img < 22 && t.batch_labels[b] == (img * 5) % 3;
            if (img >= 0 && img < 22) seen[img]++;
        }
    }
    CHECK(ok, "a batch's labels are not its images'");
    int distinct = 0;
    for (int i = 0; i < 22; i++) distinct += seen[i] > 0;
    CHECK(distinct >= 20, "only %d images seen", distinct);
    trainer_free(&t);
    model_free(&m);
    tensor_free(&data);
    tensor_free(&lab);
}

int main(void) {
    be = backend_cpu(1);
    RUN(test_finite_differences);
    RUN(test_own_class);
    RUN(test_spec);
    RUN(test_tensors);
    RUN(test_model_classes);
    RUN(test_trainer_labels);
    return harness_done();
}
