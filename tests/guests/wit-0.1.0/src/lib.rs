//! A runtime built against the first published WIT, `mlhost:runtime@0.1.0` (kept as it was in
//! `wit/` of this crate), for tests only: it echoes its one input as output `echo`. Hosts of
//! later compatible versions must load and run it unchanged.

#[cfg(target_arch = "wasm32")]
mod runtime {
    wit_bindgen::generate!({
        path: "wit",
        world: "mlhost:runtime/runtime@0.1.0",
    });

    use exports::mlhost::runtime::model::{Guest, GuestModel, Model as ModelHandle};
    use mlhost::runtime::host;
    use mlhost::runtime::types::{Datatype, Error, InferenceRequest, ModelSettings, TensorRole};

    struct Echo;

    impl GuestModel for Echo {
        fn load(_settings: ModelSettings) -> Result<ModelHandle, Error> {
            Ok(ModelHandle::new(Echo))
        }

        fn metadata(&self) -> Result<(), Error> {
            host::describe_platform("echo-0.1.0").map_err(Error::Internal)?;
            host::describe_tensor(TensorRole::Output, "echo", Datatype::Fp64, &[-1])
                .map_err(Error::Internal)
        }

        fn predict(&self, request: InferenceRequest) -> Result<(), Error> {
            let [input] = request.inputs.as_slice() else {
                return Err(Error::InvalidInput("expected one input".into()));
            };
            host::add_output("echo", input.datatype, &input.shape, &input.data)
                .map_err(Error::Internal)
        }
    }

    struct Component;

    impl Guest for Component {
        type Model = Echo;
    }

    export!(Component);
}
