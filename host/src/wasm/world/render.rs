//! Types and functions in words: their structure (what the component model compares), their
//! signatures as WIT writes them, and the named types they reach (for messages).

use std::collections::BTreeMap;
use wit_parser::{Function, FunctionKind, Handle, Resolve, Type, TypeDefKind, TypeId};

/// "method `predict` of resource `model`", "function `add-output`", ...
pub(super) fn describe_function(resolve: &Resolve, function: &Function) -> String {
    let resource = |id: TypeId| {
        resolve.types[id]
            .name
            .clone()
            .unwrap_or_else(|| "<anonymous>".into())
    };
    let short = function
        .name
        .rsplit_once('.')
        .map_or(function.name.as_str(), |(_, name)| name);
    match &function.kind {
        FunctionKind::Method(id) | FunctionKind::AsyncMethod(id) => {
            format!("method `{short}` of resource `{}`", resource(*id))
        }
        FunctionKind::Static(id) | FunctionKind::AsyncStatic(id) => {
            format!("static function `{short}` of resource `{}`", resource(*id))
        }
        FunctionKind::Constructor(id) => format!("constructor of resource `{}`", resource(*id)),
        FunctionKind::Freestanding | FunctionKind::AsyncFreestanding => {
            format!("function `{}`", function.name)
        }
    }
}

/// The function's full structure, for comparison (type names do not matter, only shapes).
pub(super) fn function_shape(resolve: &Resolve, function: &Function) -> String {
    // Parameter names are not part of a function's type (wasmtime compares the types only).
    let params: Vec<String> = function
        .params
        .iter()
        .map(|(_, ty)| shape(resolve, ty))
        .collect();
    let result = function
        .result
        .as_ref()
        .map(|ty| shape(resolve, ty))
        .unwrap_or_default();
    let asynchronous = matches!(
        function.kind,
        FunctionKind::AsyncFreestanding
            | FunctionKind::AsyncMethod(_)
            | FunctionKind::AsyncStatic(_)
    );
    format!(
        "{}({}) -> {result}",
        if asynchronous { "async " } else { "" },
        params.join(", ")
    )
}

/// The function as WIT writes it, with type names: `func(request: inference-request) -> ...`.
pub(super) fn function_signature(resolve: &Resolve, function: &Function) -> String {
    let params: Vec<String> = function
        .params
        .iter()
        .filter(|(name, _)| {
            // A method's first parameter is the implicit `self`.
            !(matches!(
                function.kind,
                FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
            ) && name == "self")
        })
        .map(|(name, ty)| format!("{name}: {}", short(resolve, ty)))
        .collect();
    match &function.result {
        Some(ty) => format!("func({}) -> {}", params.join(", "), short(resolve, ty)),
        None => format!("func({})", params.join(", ")),
    }
}

/// A type's structure, all the way down; names of records, variants and enums are left out
/// (the component model compares structure), field and case names are kept.
fn shape(resolve: &Resolve, ty: &Type) -> String {
    let Type::Id(id) = ty else {
        return primitive(ty).to_string();
    };
    let def = &resolve.types[*id];
    let list = |types: &mut dyn Iterator<Item = String>| types.collect::<Vec<_>>().join(", ");
    match &def.kind {
        TypeDefKind::Record(record) => format!(
            "record {{{}}}",
            list(&mut record.fields.iter().map(|field| format!(
                "{}: {}",
                field.name,
                shape(resolve, &field.ty)
            )))
        ),
        TypeDefKind::Resource => format!("resource {}", def.name.as_deref().unwrap_or("_")),
        TypeDefKind::Handle(Handle::Own(target)) => {
            format!("own<{}>", shape(resolve, &Type::Id(*target)))
        }
        TypeDefKind::Handle(Handle::Borrow(target)) => {
            format!("borrow<{}>", shape(resolve, &Type::Id(*target)))
        }
        TypeDefKind::Flags(flags) => format!(
            "flags {{{}}}",
            list(&mut flags.flags.iter().map(|flag| flag.name.clone()))
        ),
        TypeDefKind::Tuple(tuple) => format!(
            "tuple<{}>",
            list(&mut tuple.types.iter().map(|ty| shape(resolve, ty)))
        ),
        TypeDefKind::Variant(variant) => format!(
            "variant {{{}}}",
            list(&mut variant.cases.iter().map(|case| match &case.ty {
                Some(ty) => format!("{}({})", case.name, shape(resolve, ty)),
                None => case.name.clone(),
            }))
        ),
        TypeDefKind::Enum(cases) => format!(
            "enum {{{}}}",
            list(&mut cases.cases.iter().map(|case| case.name.clone()))
        ),
        TypeDefKind::Option(ty) => format!("option<{}>", shape(resolve, ty)),
        TypeDefKind::Result(result) => format!(
            "result<{}, {}>",
            result
                .ok
                .as_ref()
                .map_or("_".into(), |ty| shape(resolve, ty)),
            result
                .err
                .as_ref()
                .map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::List(ty) => format!("list<{}>", shape(resolve, ty)),
        TypeDefKind::FixedSizeList(ty, size) => format!("list<{}, {size}>", shape(resolve, ty)),
        TypeDefKind::Future(ty) => format!(
            "future<{}>",
            ty.as_ref().map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::Stream(ty) => format!(
            "stream<{}>",
            ty.as_ref().map_or("_".into(), |ty| shape(resolve, ty))
        ),
        TypeDefKind::Type(ty) => shape(resolve, ty),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

/// A type as WIT writes it at a use site: named types by name.
fn short(resolve: &Resolve, ty: &Type) -> String {
    let Type::Id(id) = ty else {
        return primitive(ty).to_string();
    };
    let def = &resolve.types[*id];
    if let Some(name) = &def.name {
        return name.clone();
    }
    match &def.kind {
        TypeDefKind::Option(ty) => format!("option<{}>", short(resolve, ty)),
        TypeDefKind::List(ty) => format!("list<{}>", short(resolve, ty)),
        TypeDefKind::Result(result) => format!(
            "result<{}, {}>",
            result
                .ok
                .as_ref()
                .map_or("_".into(), |ty| short(resolve, ty)),
            result
                .err
                .as_ref()
                .map_or("_".into(), |ty| short(resolve, ty))
        ),
        TypeDefKind::Tuple(tuple) => format!(
            "tuple<{}>",
            tuple
                .types
                .iter()
                .map(|ty| short(resolve, ty))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Handle(Handle::Own(target)) => short(resolve, &Type::Id(*target)),
        TypeDefKind::Handle(Handle::Borrow(target)) => {
            format!("borrow<{}>", short(resolve, &Type::Id(*target)))
        }
        _ => shape(resolve, ty),
    }
}

/// Every named type a function's signature reaches, with its shape.
pub(super) fn named_types(resolve: &Resolve, function: &Function) -> BTreeMap<String, String> {
    fn visit(resolve: &Resolve, ty: &Type, out: &mut BTreeMap<String, String>) {
        let Type::Id(id) = ty else { return };
        let def = &resolve.types[*id];
        if let Some(name) = &def.name {
            if out.contains_key(name) {
                return;
            }
            out.insert(name.clone(), shape(resolve, ty));
        }
        let mut children: Vec<&Type> = Vec::new();
        match &def.kind {
            TypeDefKind::Record(record) => children.extend(record.fields.iter().map(|f| &f.ty)),
            TypeDefKind::Tuple(tuple) => children.extend(&tuple.types),
            TypeDefKind::Variant(variant) => {
                children.extend(variant.cases.iter().filter_map(|case| case.ty.as_ref()))
            }
            TypeDefKind::Option(ty) | TypeDefKind::List(ty) | TypeDefKind::Type(ty) => {
                children.push(ty)
            }
            TypeDefKind::FixedSizeList(ty, _) => children.push(ty),
            TypeDefKind::Result(result) => {
                children.extend(result.ok.iter().chain(result.err.iter()))
            }
            _ => {}
        }
        for child in children {
            visit(resolve, child, out);
        }
    }
    let mut out = BTreeMap::new();
    for (_, ty) in &function.params {
        visit(resolve, ty, &mut out);
    }
    if let Some(ty) = &function.result {
        visit(resolve, ty, &mut out);
    }
    out
}

/// A primitive type as WIT writes it.
fn primitive(ty: &Type) -> &'static str {
    match ty {
        Type::Bool => "bool",
        Type::U8 => "u8",
        Type::U16 => "u16",
        Type::U32 => "u32",
        Type::U64 => "u64",
        Type::S8 => "s8",
        Type::S16 => "s16",
        Type::S32 => "s32",
        Type::S64 => "s64",
        Type::F32 => "f32",
        Type::F64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::ErrorContext => "error-context",
        Type::Id(_) => "type",
    }
}
