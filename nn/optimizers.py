"""Keras's optimizers (``keras.optimizers``): Keras's names, arguments and defaults.

Each class is one of ``optim``'s update rules, configured as Keras configures it;
no update rule is written twice. What differs from ``optim``'s torch defaults:

=========  ==========================================  ================================
Keras      arguments and defaults                      how it maps onto ``optim``
=========  ==========================================  ================================
SGD        learning_rate=0.01, momentum=0, nesterov    optim.SGD (the same update)
RMSprop    learning_rate=0.001, rho=0.9, epsilon=1e-7  optim.RMSprop, alpha=rho, eps
                                                       inside the square root
Adam       learning_rate=0.001, beta_1=0.9,            optim.Adam, eps added before the
           beta_2=0.999, epsilon=1e-7                  bias correction (``epsilon_hat``)
AdamW      as Adam, weight_decay=0.004                 the same, decay on the weights
=========  ==========================================  ================================

Keras adds epsilon to sqrt(v) and then corrects the bias (the Adam paper's ε̂);
torch corrects v first. We follow Keras here, so a script that says
``optimizer="adam"`` trains as it does under Keras, and ``optim.Adam`` stays torch's.
In every Keras optimizer ``weight_decay`` shrinks the weights directly
(``w -= learning_rate * weight_decay * w``), never through the gradient.

``compile(optimizer="rmsprop")`` gets ``RMSprop()`` from here: Keras's defaults.
"""

from __future__ import annotations

import optim

_UNSUPPORTED = ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum",
                "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps")


class KerasOptimizer:
    """Mixed into each Keras optimizer: Keras's attribute names next to optim's."""

    keras_names: dict[str, str] = {"learning_rate": "lr", "epsilon": "eps"}

    @property
    def learning_rate(self) -> float:
        return self.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.lr = value

    def __getattr__(self, name: str):
        # Only for names not found normally: opt.epsilon -> opt.eps, opt.beta_1 -> betas[0].
        if name in ("beta_1", "beta_2") and "betas" in vars(self):
            return self.betas[int(name[-1]) - 1]
        if name in type(self).keras_names:
            return getattr(self, type(self).keras_names[name])
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    @classmethod
    def from_hyperparameters(cls, hyper: dict) -> optim.Optimizer:
        """From optim's names (as state_dict() and saved models record them): made through
        the optim class this one configures."""
        optimizer = cls.__new__(cls)
        rule = next(c for c in cls.__mro__ if c.__module__.startswith("optim."))
        rule.__init__(optimizer, None, **hyper)
        return optimizer

    def get_config(self) -> dict:
        config = {keras: getattr(self, keras) for keras in type(self).keras_names}
        if "betas" in vars(self):
            config.update(beta_1=self.betas[0], beta_2=self.betas[1])
        return config


def _check_options(name: str, options: dict) -> None:
    options.pop("name", None)  # Keras's optimizer name: nothing here depends on it
    for key in options:
        if key in _UNSUPPORTED:
            raise ValueError(f"optimizers.{name}: {key}= is not supported; clip gradients "
                             "in a PyTorch-style loop with optim.clip_grad_norm(params, "
                             "max_norm) before opt.step()")
        raise TypeError(f"optimizers.{name}: unexpected argument {key!r}")


class SGD(KerasOptimizer, optim.SGD):
    """keras.optimizers.SGD: w -= learning_rate * g, with optional (Nesterov) momentum."""

    decoupled_weight_decay = True
    keras_names = {"learning_rate": "lr", "momentum": "momentum", "nesterov": "nesterov"}

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float | None = None, **options) -> None:
        _check_options("SGD", options)
        super().__init__(None, lr=learning_rate, momentum=momentum, nesterov=nesterov,
                         weight_decay=weight_decay or 0.0)


class RMSprop(KerasOptimizer, optim.RMSprop):
    """keras.optimizers.RMSprop: s = rho·s + (1 - rho)·g², w -= learning_rate·g / sqrt(s + ε)."""

    decoupled_weight_decay = True
    eps_inside_sqrt = True
    keras_names = {"learning_rate": "lr", "rho": "alpha", "momentum": "momentum",
                   "epsilon": "eps", "centered": "centered"}

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False,
                 weight_decay: float | None = None, **options) -> None:
        _check_options("RMSprop", options)
        super().__init__(None, lr=learning_rate, alpha=rho, eps=epsilon, momentum=momentum,
                         centered=centered, weight_decay=weight_decay or 0.0)


class Adam(KerasOptimizer, optim.Adam):
    """keras.optimizers.Adam: w -= lr·sqrt(1 - β₂ᵗ)/(1 - β₁ᵗ) · m / (sqrt(v) + ε)."""

    decoupled_weight_decay = True
    epsilon_hat = True
    keras_names = {"learning_rate": "lr", "epsilon": "eps", "amsgrad": "amsgrad"}

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: float | None = None, **options) -> None:
        _check_options(type(self).__name__, options)
        super().__init__(None, lr=learning_rate, betas=(beta_1, beta_2), eps=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay or 0.0)


class AdamW(Adam):
    """keras.optimizers.AdamW: Adam, and w -= learning_rate · weight_decay · w each step."""

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 amsgrad: bool = False, **options) -> None:
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         **options)


OPTIMIZERS: dict[str, type[optim.Optimizer]] = {
    "sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW,
}


def get(identifier: str | optim.Optimizer) -> optim.Optimizer:
    """Keras's lookup: ``get("rmsprop")`` is ``RMSprop()`` with Keras's defaults; an optimizer
    object (from here or from ``optim``) is returned as it is."""
    return optim.registry.get(identifier, OPTIMIZERS)


# The classes a saved model may name: optim's by their own name, these as "keras.Adam" ...
SAVED_CLASSES: dict[str, type[optim.Optimizer]] = {
    **{cls.__name__: cls for cls in optim.registry.OPTIMIZERS.values()},
    **{f"keras.{cls.__name__}": cls for cls in OPTIMIZERS.values()},
}


def saved_name(optimizer: optim.Optimizer) -> str | None:
    """The name ``model.save`` records for ``optimizer``'s class (None: not a known class)."""
    return next((name for name, cls in SAVED_CLASSES.items() if type(optimizer) is cls), None)


__all__ = ["SGD", "Adam", "AdamW", "KerasOptimizer", "RMSprop", "get"]
