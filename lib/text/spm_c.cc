// spm_c.cc: the project's only C++ file: wraps SentencePiece's C++ API behind extern "C" functions
// that never throw and never print.
#include <cstdio>
#include "spm_c.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

// Exported by libsentencepiece but not declared in its installed headers; used to keep training quiet.
namespace sentencepiece {
namespace logging {
void SetMinLogLevel(int v);
int GetMinLogLevel();
}  // namespace logging
}  // namespace sentencepiece

struct lstm_spm {
    sentencepiece::SentencePieceProcessor sp;
};

namespace {

class ArrayIterator : public sentencepiece::SentenceIterator {
   public:
    ArrayIterator(const char *const *s, const size_t *l, size_t n) : s_(s), l_(l), n_(n) { load(); }
    bool done() const override { return i_ >= n_; }
    void Next() override {
        i_++;
        load();
    }
    const std::string &value() const override { return cur_; }
    sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

   private:
    void load() {
        if (i_ < n_) cur_.assign(s_[i_], l_[i_]);
    }
    const char *const *s_;
    const size_t *l_;
    size_t n_, i_ = 0;
    std::string cur_;
};

void copy_msg(char *msg, size_t cap, const std::string &s) {
    if (!msg || !cap) return;
    size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
    std::memcpy(msg, s.data(), n);
    msg[n] = '\0';
}

}  // namespace

extern "C" int lstm_spm_load(lstm_spm **out, const void *model, size_t len) {
    *out = nullptr;
    try {
        lstm_spm *s = new lstm_spm;
        auto st = s->sp.LoadFromSerializedProto(
            absl::string_view(static_cast<const char *>(model), len));
        if (!st.ok() || s->sp.GetPieceSize() <= 0) {
            delete s;
            return LSTM_E_SPM;
        }
        *out = s;
        return 0;
    } catch (const std::bad_alloc &) {
        return LSTM_E_NOMEM;
    } catch (...) {
        return LSTM_E_SPM;
    }
}

extern "C" void lstm_spm_free(lstm_spm *s) {
    try {
        delete s;
    } catch (...) {
    }
}

extern "C" int lstm_spm_train(const char *const *sents, const size_t *lens, size_t n, int vocab_size,
                              int case_fold, int threads, uint8_t **model, size_t *model_len, char *msg,
                              size_t msgcap) {
    *model = nullptr;
    *model_len = 0;
    if (msg && msgcap) msg[0] = '\0';
    try {
        std::unordered_map<std::string, std::string> kw = {
            {"model_type", "bpe"},
            {"vocab_size", std::to_string(vocab_size)},
            {"byte_fallback", "true"},
            {"character_coverage", "0.9995"},
            {"normalization_rule_name", case_fold ? "nmt_nfkc_cf" : "nmt_nfkc"},
            {"unk_id", "0"},
            {"bos_id", "-1"},
            {"eos_id", "-1"},
            {"pad_id", "-1"},
            {"num_threads", std::to_string(threads > 0 ? threads : 1)},
            {"max_sentence_length", "1048576"},
            {"input_sentence_size", "0"},
            {"shuffle_input_sentence", "false"},
            {"model_prefix", ""}, {"hard_vocab_limit", "false"},
        };
        ArrayIterator it(sents, lens, n);
        std::string out;
        int old = sentencepiece::logging::GetMinLogLevel();
        sentencepiece::logging::SetMinLogLevel(3);
        auto st = sentencepiece::SentencePieceTrainer::Train(kw, &it, &out);
        sentencepiece::logging::SetMinLogLevel(old);
        if (!st.ok()) {
            /* "Vocabulary size is smaller than required_chars. 46 vs 268.": the input needs more
             * pieces (byte fallback, <unk> and its characters) than vocab_size */
            std::string t = st.ToString();
            size_t at = t.find("smaller than required_chars.");
            int have = 0, need = 0;
            if (at != std::string::npos &&
                std::sscanf(t.c_str() + at + 28, " %d vs %d", &have, &need) == 2 && need > 0) {
                copy_msg(msg, msgcap, std::to_string(need));
                return LSTM_E_RANGE;
            }
            copy_msg(msg, msgcap, t);
            return LSTM_E_SPM;
        }
        uint8_t *p = static_cast<uint8_t *>(std::malloc(out.size() ? out.size() : 1));
        if (!p) return LSTM_E_NOMEM;
        std::memcpy(p, out.data(), out.size());
        *model = p;
        *model_len = out.size();
        return 0;
    } catch (const std::bad_alloc &) {
        return LSTM_E_NOMEM;
    } catch (const std::exception &e) {
        copy_msg(msg, msgcap, e.what());
        return LSTM_E_SPM;
    } catch (...) {
        return LSTM_E_SPM;
    }
}

extern "C" int lstm_spm_size(const lstm_spm *s) {
    try {
        return s->sp.GetPieceSize();
    } catch (...) {
        return 0;
    }
}

extern "C" int lstm_spm_unk_id(const lstm_spm *s) {
    try {
        return s->sp.unk_id();
    } catch (...) {
        return -1;
    }
}

extern "C" const char *lstm_spm_piece(const lstm_spm *s, int id, size_t *len) {
    try {
        if (id < 0 || id >= s->sp.GetPieceSize()) return nullptr;
        const std::string &p = s->sp.IdToPiece(id);
        if (len) *len = p.size();
        return p.c_str();
    } catch (...) {
        return nullptr;
    }
}

extern "C" int lstm_spm_is_control(const lstm_spm *s, int id) {
    try {
        return s->sp.IsControl(id) || s->sp.IsUnused(id) || s->sp.IsUnknown(id);
    } catch (...) {
        return 0;
    }
}

extern "C" int lstm_spm_is_byte(const lstm_spm *s, int id) {
    try {
        return s->sp.IsByte(id);
    } catch (...) {
        return 0;
    }
}

extern "C" int lstm_spm_encode(const lstm_spm *s, const char *text, size_t len, int *ids, size_t cap, size_t *n) {
    *n = 0;
    try {
        std::vector<int> v;
        auto st = s->sp.Encode(absl::string_view(text, len), &v);
        if (!st.ok()) return LSTM_E_SPM;
        *n = v.size();
        if (v.size() <= cap && !v.empty()) std::memcpy(ids, v.data(), v.size() * sizeof(int));
        return 0;
    } catch (const std::bad_alloc &) {
        return LSTM_E_NOMEM;
    } catch (...) {
        return LSTM_E_SPM;
    }
}

extern "C" int lstm_spm_decode(const lstm_spm *s, const int *ids, size_t n, char **text, size_t *len) {
    *text = nullptr;
    *len = 0;
    try {
        std::vector<int> v(ids, ids + n);
        std::string out;
        auto st = s->sp.Decode(v, &out);
        if (!st.ok()) return LSTM_E_SPM;
        char *p = static_cast<char *>(std::malloc(out.size() + 1));
        if (!p) return LSTM_E_NOMEM;
        std::memcpy(p, out.data(), out.size());
        p[out.size()] = '\0';
        *text = p;
        *len = out.size();
        return 0;
    } catch (const std::bad_alloc &) {
        return LSTM_E_NOMEM;
    } catch (...) {
        return LSTM_E_SPM;
    }
}
