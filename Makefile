# gan-tools build.  `make` builds every program into bin/ (CPU); `make CUDA=1` also compiles
# kernels/ with nvcc (warnings are errors) and links cuBLAS, so that --device cuda runs on a
# GPU; `make CUDA=emu` builds the CUDA sources as a host emulation (kernels/cuda_emu.h);
# `make check` runs every test (see tests/run.sh); `make install PREFIX=...`.
#
# `make MPI=1` (the default when mpicc is found) builds gan-step for data-parallel training
# under mpirun; MPI=0 without. With CUDA=1, NCCL=1 (the default when nccl.h is found) lets
# those runs use GPUs.
#
# Sources are found by wildcard: a new lib/*/*.c, formats/*.c, cmd/*.c, tests/unit/test_*.c or
# kernels/*.cu is picked up without editing this file.

# `make` with no target builds the programs, whatever rule comes first below
.DEFAULT_GOAL := all

PREFIX  ?= /usr/local
BUILD   ?= release
CUDA    ?= 0
CC      ?= cc
CXX     ?= c++
CUDA_HOME ?= /usr/local/cuda
NVCC    ?= $(shell command -v nvcc 2>/dev/null || echo $(CUDA_HOME)/bin/nvcc)

WARN     = -Wall -Wextra -pedantic
CSTD     = -std=c11
# -std=c11 (not gnu11) keeps GCC from contracting a*b+c into FMA: the CPU computes exactly the
# function written, which is what the CUDA build with --fmad=false is compared against.
OPT_release = -O2 -g
OPT_asan    = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT_emu     = -O2 -g
OPT         = $(OPT_$(BUILD))
# -I.: every project header is included by its path from the repository root (lib/base/common.h),
# or by its bare name from a file in the same folder.
CPPFLAGS   += -I. -D_FILE_OFFSET_BITS=64 -I/usr/include/cjson
CFLAGS     ?=
# -fno-math-errno: nothing reads errno after a math function, and without it GCC cannot
# compile sqrtf to one instruction (nor vectorize a loop that calls it). VECT: GCC 12's -O2
# vectorizes only loops whose trip count is known; the dynamic cost model lets it vectorize the
# element-wise loops of the layers too (measured: col2im 3.1 -> 2.0 ms on the DCGAN's 28x28
# layer). Neither changes results: GCC never reorders float arithmetic without -ffast-math.
VECT      := $(shell $(CC) -fvect-cost-model=dynamic -E -x c /dev/null >/dev/null 2>&1 && echo -fvect-cost-model=dynamic)
CFLAGS     += $(CSTD) $(WARN) $(OPT) $(VECT) -fno-math-errno -pthread
LDFLAGS    += $(filter -fsanitize%,$(OPT)) -pthread
LDLIBS     += -llapacke -lopenblas -lpng -lz -lcjson -lm

# Objects of each build flavour live apart, so switching flavours never mixes them.
# OBJ and BIN may be overridden on the command line for a private build (e.g. OBJ=build/mine BIN=build/mine/bin).
OBJ ?= build/$(BUILD)-cuda$(CUDA)
ifeq ($(BUILD),release)
  BIN ?= bin
else
  BIN ?= $(OBJ)/bin
endif

LIB_SRC  = $(sort $(wildcard lib/*/*.c formats/*.c))
CMD_SRC  = $(sort $(wildcard cmd/*.c))
UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC = $(sort $(wildcard tests/tools/*.c))
BENCH_SRC = $(sort $(wildcard bench/*.c))
CU_SRC   = $(sort $(wildcard kernels/*.cu))

PROGRAMS = $(patsubst cmd/%.c,%,$(CMD_SRC))
LIB_OBJ  = $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRC))

# --- CUDA: real (nvcc) or host emulation -------------------------------------------------
ifeq ($(CUDA),1)
  CU_OBJ    = $(patsubst %.cu,$(OBJ)/%.cu.o,$(CU_SRC))
  CPPFLAGS += -DGT_HAVE_CUDA=1
  # Machine code for Ampere (sm_80), Ada (sm_89) and Hopper (sm_90), plus the PTX of the newest
  # of them (compute_90), which the driver JIT-compiles on first run for a GPU newer than every
  # listed one (Blackwell: sm_100, sm_120); without PTX such a GPU could not run the kernels.
  # NVARCH=... to change it (tests/cuda-build.bats checks what a build embeds).
  NVARCH   ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_89,code=sm_89 \
              -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_90,code=compute_90
  NVFLAGS  ?= -O2 -std=c++17 --fmad=false -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror $(NVARCH)
  # a change of NVARCH recompiles the kernels (the stamp below)
  $(CU_OBJ): $(OBJ)/.nvarch
  LDFLAGS  += -Wl,-rpath,$(CUDA_HOME)/lib64
  LDLIBS   += -L$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++
  LINK      = $(CXX)
  # NCCL, for data-parallel training on GPUs (kernels/dist_nccl.cu): used when the toolkit
  # (or NVIDIA's libnccl-dev) provides nccl.h; NCCL=0 builds without it (gan-step then refuses
  # --device cuda under mpirun and says why).
  NCCL     ?= $(if $(wildcard $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h),1,0)
  ifeq ($(NCCL),1)
    $(OBJ)/kernels/dist_nccl.cu.o: CPPFLAGS += -DGT_HAVE_NCCL=1
    $(OBJ)/kernels/dist_nccl.cu.o: $(OBJ)/.nccl
    LDLIBS += -lnccl
  endif
else ifeq ($(CUDA),emu)
  CU_OBJ    = $(patsubst %.cu,$(OBJ)/%.emu.o,$(CU_SRC))
  CPPFLAGS += -DGT_HAVE_CUDA=1 -DGT_CUDA_EMU=1
  LINK      = $(CXX)
  LDLIBS   += -lstdc++
else
  CU_OBJ    =
  LINK      = $(CC)
endif

# --- MPI: data-parallel gan-step (lib/base/dist.c). MPI=1 builds it with Open MPI (mpicc's flags),
# MPI=0 without; by default it is built when mpicc is found. Only lib/base/dist.o depends on it.
MPICC   ?= mpicc
MPI     ?= $(if $(shell command -v $(MPICC) 2>/dev/null),1,0)
ifeq ($(MPI),1)
  MPI_CPPFLAGS := -DGT_HAVE_MPI=1 $(shell $(MPICC) --showme:compile 2>/dev/null)
  LDLIBS   += -Wl,--as-needed $(shell $(MPICC) --showme:link 2>/dev/null) -Wl,--no-as-needed
  ifeq ($(strip $(MPI_CPPFLAGS)),-DGT_HAVE_MPI=1)
    $(error MPI=1 but '$(MPICC) --showme:compile' fails: install Open MPI (apt-get install libopenmpi-dev openmpi-bin) or give MPICC=)
  endif
endif
$(OBJ)/lib/base/dist.o: CPPFLAGS += $(MPI_CPPFLAGS)
$(OBJ)/lib/base/dist.o: $(OBJ)/.mpi

# Stamps: a file that holds a setting and is rewritten (a new mtime) only when the setting
# changes, so that what depends on it is rebuilt then and only then. They are brought up to date
# while the Makefile is read, not by rules, so that `make -n` sees the true state.
# $(call stamp,FILE,VARIABLE) makes FILE hold VARIABLE's value; under make -n or -q, which must
# change nothing, a stamp that would change gets a rule instead, so they see what would rebuild.
DRY_RUN := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))
define stamp_rule
$(1): FORCE
	@mkdir -p $$(dir $$@)
	@printf '%s\n' '$$($(2))' > $$@
endef
stamp_differs = $(shell printf '%s\n' '$($(2))' | cmp -s - $(1) 2>/dev/null || echo yes)
stamp = $(if $(DRY_RUN),$(if $(stamp_differs),$(eval $(call stamp_rule,$(1),$(2)))),\
          $(shell mkdir -p $(dir $(1)) && { printf '%s\n' '$($(2))' | cmp -s - $(1) || printf '%s\n' '$($(2))' > $(1); }))
# whether this flavour's lib/base/dist.o was built with MPI; whether its kernels/dist_nccl.cu.o
# was built with NCCL; the architectures its kernels were compiled for
STAMPS := $(call stamp,$(OBJ)/.mpi,MPI)
ifeq ($(CUDA),1)
  STAMPS += $(call stamp,$(OBJ)/.nccl,NCCL) $(call stamp,$(OBJ)/.nvarch,NVARCH)
endif

LIBA = $(OBJ)/libgan.a

.SECONDARY:
.PHONY: all check unit-tests install uninstall clean deps fuzz bench demo asan emu FORCE
all: $(addprefix $(BIN)/,$(PROGRAMS))

# Which flavour the programs in $(BIN) were linked from: a stamp (above), so that the programs
# are relinked after make CUDA=1 following make, both into bin/.
FLAVOUR_ID := $(OBJ) mpi=$(MPI) nccl=$(NCCL)
STAMPS += $(call stamp,$(BIN)/.flavour,FLAVOUR_ID)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(OBJ)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(CPPFLAGS) $(NVFLAGS) -MMD -MP -c $< -o $@

# Host emulation: the same .cu compiled as C++ against kernels/cuda_emu.h.
$(OBJ)/%.emu.o: %.cu
	@mkdir -p $(dir $@)
	$(CXX) -x c++ -std=c++17 $(WARN) $(OPT) $(CPPFLAGS) -MMD -MP -c $< -o $@

$(LIBA): $(LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN)/%: $(OBJ)/cmd/%.o $(LIBA) $(BIN)/.flavour
	@mkdir -p $(dir $@)
	$(LINK) $(LDFLAGS) $< $(LIBA) $(LDLIBS) -o $@

$(OBJ)/tests/unit/%: $(OBJ)/tests/unit/%.o $(LIBA)
	$(LINK) $(LDFLAGS) $< $(LIBA) $(LDLIBS) -o $@

# Test-only programs (e.g. the layer probe the PyTorch parity scripts drive).
$(OBJ)/tests/tools/%: $(OBJ)/tests/tools/%.o $(LIBA)
	$(LINK) $(LDFLAGS) $< $(LIBA) $(LDLIBS) -o $@

# Benchmark helpers and drivers (bench/*.c: bench/step_cost, bench/train_bench), built with the
# tests so they never rot; `make bench` runs them.
$(OBJ)/bench/%: $(OBJ)/bench/%.o $(LIBA)
	$(LINK) $(LDFLAGS) $< $(LIBA) $(LDLIBS) -o $@

unit-tests: $(patsubst tests/unit/%.c,$(OBJ)/tests/unit/%,$(UNIT_SRC)) \
            $(patsubst tests/tools/%.c,$(OBJ)/tests/tools/%,$(TOOL_SRC)) \
            $(patsubst bench/%.c,$(OBJ)/bench/%,$(BENCH_SRC))

# Everything CI runs: release build, unit tests, bats, PyTorch/NumPy parity, the sanitizer
# build of unit tests and bats (built without MPI, so tests/mpi.bats checks that build's refusal
# to run as several ranks, and the release build's data-parallel runs), the CUDA emulation build (its backend parity suite and
# programs), and, where nvcc is installed, the real CUDA build (into build/release-cuda1, so
# bin/ stays the CPU build the bats tests expect; its parity suite skips without a GPU).
# One summary line at the end.
check:
	$(MAKE) all unit-tests
	$(MAKE) BUILD=asan MPI=0 all unit-tests
	$(MAKE) BUILD=emu CUDA=emu all unit-tests
	if [ -x "$(NVCC)" ]; then $(MAKE) CUDA=1 BIN=build/release-cuda1/bin all unit-tests; \
	else echo "nvcc not found: the CUDA=1 build is skipped"; fi
	bash tests/run.sh

deps:
	bash tools/deps.sh

fuzz:
	bash tests/fuzz/run.sh

bench: all $(patsubst bench/%.c,$(OBJ)/bench/%,$(BENCH_SRC)) $(OBJ)/tests/tools/nn-probe
	bash bench/run.sh

demo: all
	bash examples/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(addprefix $(BIN)/,$(PROGRAMS)) $(DESTDIR)$(PREFIX)/bin/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(PROGRAMS))

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
