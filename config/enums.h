// Enumerated config values and their spellings in YAML. One table per enum, used by the parser,
// the dumper and --help.
#pragma once

#include <array>
#include <string_view>
#include <utility>

namespace neftune::config {

enum class DType { fp32, bf16 };
enum class TokenizerKind { byte, sentencepiece, hf, auto_detect };
enum class DataFormat { alpaca, dolly, sharegpt, messages, auto_detect };
enum class ChatTemplateName { auto_detect, llama3, chatml, qwen3, llama2, mistral, alpaca };
enum class TrainOn { assistant, last_assistant, all };
enum class TooLong { truncate, skip, error };
enum class OnMalformed { error, skip };
enum class Schedule { cosine, linear, constant };
enum class LossNormalization { token, microbatch_mean };
enum class Backend { auto_select, mpi, nccl };
enum class Sharding { full, grad_op, none };
enum class Progress { auto_detect, on, off };
enum class RopeScalingType { none, linear, llama3 };

template <class E>
struct EnumNames;  // specialised below: static constexpr std::array<std::pair<E, std::string_view>, N> names

#define NEFTUNE_ENUM_NAMES(E, ...)                         \
  template <>                                              \
  struct EnumNames<E> {                                    \
    static constexpr auto names = std::array{__VA_ARGS__}; \
  };

NEFTUNE_ENUM_NAMES(DType, std::pair{DType::fp32, std::string_view{"fp32"}},
                   std::pair{DType::bf16, std::string_view{"bf16"}})
NEFTUNE_ENUM_NAMES(TokenizerKind, std::pair{TokenizerKind::byte, std::string_view{"byte"}},
                   std::pair{TokenizerKind::sentencepiece, std::string_view{"sentencepiece"}},
                   std::pair{TokenizerKind::hf, std::string_view{"hf"}},
                   std::pair{TokenizerKind::auto_detect, std::string_view{"auto"}})
NEFTUNE_ENUM_NAMES(DataFormat, std::pair{DataFormat::alpaca, std::string_view{"alpaca"}},
                   std::pair{DataFormat::dolly, std::string_view{"dolly"}},
                   std::pair{DataFormat::sharegpt, std::string_view{"sharegpt"}},
                   std::pair{DataFormat::messages, std::string_view{"messages"}},
                   std::pair{DataFormat::auto_detect, std::string_view{"auto"}})
NEFTUNE_ENUM_NAMES(ChatTemplateName, std::pair{ChatTemplateName::auto_detect, std::string_view{"auto"}},
                   std::pair{ChatTemplateName::llama3, std::string_view{"llama3"}},
                   std::pair{ChatTemplateName::chatml, std::string_view{"chatml"}},
                   std::pair{ChatTemplateName::qwen3, std::string_view{"qwen3"}},
                   std::pair{ChatTemplateName::llama2, std::string_view{"llama2"}},
                   std::pair{ChatTemplateName::mistral, std::string_view{"mistral"}},
                   std::pair{ChatTemplateName::alpaca, std::string_view{"alpaca"}})
NEFTUNE_ENUM_NAMES(TrainOn, std::pair{TrainOn::assistant, std::string_view{"assistant"}},
                   std::pair{TrainOn::last_assistant, std::string_view{"last_assistant"}},
                   std::pair{TrainOn::all, std::string_view{"all"}})
NEFTUNE_ENUM_NAMES(TooLong, std::pair{TooLong::truncate, std::string_view{"truncate"}},
                   std::pair{TooLong::skip, std::string_view{"skip"}},
                   std::pair{TooLong::error, std::string_view{"error"}})
NEFTUNE_ENUM_NAMES(OnMalformed, std::pair{OnMalformed::error, std::string_view{"error"}},
                   std::pair{OnMalformed::skip, std::string_view{"skip"}})
NEFTUNE_ENUM_NAMES(Schedule, std::pair{Schedule::cosine, std::string_view{"cosine"}},
                   std::pair{Schedule::linear, std::string_view{"linear"}},
                   std::pair{Schedule::constant, std::string_view{"constant"}})
NEFTUNE_ENUM_NAMES(LossNormalization, std::pair{LossNormalization::token, std::string_view{"token"}},
                   std::pair{LossNormalization::microbatch_mean, std::string_view{"microbatch_mean"}})
NEFTUNE_ENUM_NAMES(Backend, std::pair{Backend::auto_select, std::string_view{"auto"}},
                   std::pair{Backend::mpi, std::string_view{"mpi"}}, std::pair{Backend::nccl, std::string_view{"nccl"}})
NEFTUNE_ENUM_NAMES(Sharding, std::pair{Sharding::full, std::string_view{"full"}},
                   std::pair{Sharding::grad_op, std::string_view{"grad_op"}},
                   std::pair{Sharding::none, std::string_view{"none"}})
NEFTUNE_ENUM_NAMES(Progress, std::pair{Progress::auto_detect, std::string_view{"auto"}},
                   std::pair{Progress::on, std::string_view{"on"}}, std::pair{Progress::off, std::string_view{"off"}})
NEFTUNE_ENUM_NAMES(RopeScalingType, std::pair{RopeScalingType::none, std::string_view{"none"}},
                   std::pair{RopeScalingType::linear, std::string_view{"linear"}},
                   std::pair{RopeScalingType::llama3, std::string_view{"llama3"}})
#undef NEFTUNE_ENUM_NAMES

template <class E>
constexpr std::string_view to_string(E value) {
  for (const auto& [v, name] : EnumNames<E>::names) {
    if (v == value) return name;
  }
  return "?";
}

template <class E>
constexpr bool from_string(std::string_view text, E& out) {
  for (const auto& [v, name] : EnumNames<E>::names) {
    if (name == text) {
      out = v;
      return true;
    }
  }
  return false;
}

template <class E, class = void>
struct IsConfigEnum : std::false_type {};
template <class E>
struct IsConfigEnum<E, std::void_t<decltype(EnumNames<E>::names)>> : std::true_type {};

}  // namespace neftune::config
