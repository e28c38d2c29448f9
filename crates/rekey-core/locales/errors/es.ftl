# Las negativas de Rekey en español: el `message` junto a cada `code` estable, en las respuestas
# de la API (en el idioma que pide el Accept-Language de la solicitud) y en la ventana de la aplicación.

error-email-missing = Introduzca una dirección de correo electrónico.
error-email-malformed = Eso no parece una dirección de correo electrónico (debería tener la forma name@example.com).
error-email-too-long = Esa dirección de correo electrónico es demasiado larga.
error-email-invisible = Esa dirección de correo electrónico contiene caracteres invisibles (pueden venir de copiarla); escríbala de nuevo.
error-locale-invalid = «{ $locale }» no es un idioma como en, de, fr, es o de-AT.
error-time-zone-invalid = «{ $zone }» no es una zona horaria como Europe/Madrid o America/New_York.
error-rate-limited = Demasiados intentos; inténtelo de nuevo dentro de { $span }.
error-busy = { $product } está ocupado con otras solicitudes; inténtelo de nuevo dentro de { $span }.
error-password-too-short = Use al menos { $min } caracteres (esta tiene { $length }).
error-password-too-long = Esa contraseña es demasiado larga: manténgala por debajo de { $max } bytes.
error-password-common = Esa contraseña figura en una lista de contraseñas comunes o filtradas; elija algo menos previsible.
error-password-context = No forme la contraseña a partir de su dirección de correo electrónico ni del nombre de la aplicación.
error-password-pattern = Esa contraseña es un patrón simple ({ $pattern ->
        [repeated] los mismos caracteres repetidos
        [piece] un fragmento corto repetido
       *[run] una serie de caracteres consecutivos
    }); se adivinaría enseguida.
error-token-malformed = Este enlace está dañado o incompleto; copie el enlace completo del correo, o use el código en su lugar.
error-token-bad-signature = Este enlace no lo emitió esta instalación de { $product } o ha sido alterado.
error-token-unsigned = Este enlace no está firmado, así que no se puede confiar en él.
error-token-wrong-algorithm = Este enlace está firmado de una forma que { $product } no acepta.
error-token-unknown-key = Este enlace se firmó con una clave que esta instalación de { $product } no conoce; pida un enlace nuevo.
error-token-wrong-issuer = Este enlace lo emitió otro servicio, no esta instalación de { $product }.
error-token-wrong-audience = Este enlace no es para esta página (un enlace de restablecimiento y un enlace de cuenta no son lo mismo).
error-token-expired = Este enlace ha caducado; pida uno nuevo.
error-token-not-yet-valid = Este enlace aún no es válido; compruebe el reloj de su ordenador.
error-token-replaced = Este enlace fue sustituido por uno más reciente; use el enlace del último correo.
error-token-used = Este enlace ya se usó; pida uno nuevo si necesita restablecer otra vez.
error-token-stale = La contraseña se cambió después de enviar este enlace, así que el enlace ya no funciona.
error-code-invalid = Ese código no funciona: es incorrecto o ya no es válido (un código se retira tras 5 intentos fallidos). Mire el correo más reciente, o abra el enlace que contiene, al que no afectan los códigos incorrectos.
error-code-burned = Ese código se introdujo mal demasiadas veces y ya no funciona; pida un nuevo restablecimiento.
error-bad-credentials = Ese correo electrónico y esa contraseña no coinciden con ninguna cuenta.
error-password-mismatch = Esa no es la contraseña elegida al pedir esta cuenta. Si usted no pidió ninguna cuenta, ignore el correo; para crear una, pídala de nuevo con la contraseña que desee.
error-account-verified = Este enlace ya se usó y la cuenta está lista: inicie sesión con la contraseña que eligió.
error-email-taken = Ya existe una cuenta con ese correo electrónico; inicie sesión o restablezca su contraseña.
error-session-invalid = Se ha cerrado su sesión; vuelva a iniciarla.
error-store-unavailable = { $product } no puede acceder a su base de datos en este momento y no se ha cambiado nada; inténtelo de nuevo dentro de un minuto.
error-internal = Algo salió mal en { $product } y no se ha cambiado nada; inténtelo de nuevo y, si sigue ocurriendo, consulte el registro.
error-registration-closed = Este servidor no permite crear cuentas nuevas; consulte a su administrador.
